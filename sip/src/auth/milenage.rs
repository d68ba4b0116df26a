//! The Milenage algorithm set (3GPP TS 35.206 §4.1): the authentication functions
//! f1, f1*, f2, f3, f4, f5 and f5* built on AES-128, with the standard rotation and
//! constant values (r1 = 64, r2 = 0, r3 = 32, r4 = 64, r5 = 96; c1..c5 = 0, 1, 2, 4, 8).
//!
//! Test data: TS 35.207 §4 / TS 35.208 §4.3 (in `sip/tests/auth_vectors.rs`).

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;

/// A 128-bit block (K, OP, OPc, RAND, CK, IK).
pub type Block = [u8; 16];

/// Outputs of f2..f5 for one RAND (TS 35.206 §4.1).
#[derive(Clone, PartialEq, Eq)]
pub struct F2345 {
    /// f2: the response RES / XRES (64 bits).
    pub res: [u8; 8],
    /// f3: the cipher key CK.
    pub ck: Block,
    /// f4: the integrity key IK.
    pub ik: Block,
    /// f5: the anonymity key AK (48 bits).
    pub ak: [u8; 6],
}

impl std::fmt::Debug for F2345 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("F2345 { .. }")
    }
}

/// Milenage keyed with a subscriber key K and the operator variant OPc.
///
/// `Debug` does not print the keys.
#[derive(Clone)]
pub struct Milenage {
    cipher: Aes128,
    opc: Block,
}

impl std::fmt::Debug for Milenage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Milenage { .. }")
    }
}

/// OPc = OP ⊕ E_K(OP) (TS 35.206 §4.1).
pub fn opc(k: &Block, op: &Block) -> Block {
    let cipher = Aes128::new(k.into());
    xor(&encrypt(&cipher, op), op)
}

fn encrypt(cipher: &Aes128, input: &Block) -> Block {
    let mut block = (*input).into();
    cipher.encrypt_block(&mut block);
    block.into()
}

fn xor(a: &Block, b: &Block) -> Block {
    std::array::from_fn(|i| a[i] ^ b[i])
}

/// Cyclic left rotation by `bytes` octets (the r values are multiples of 8 bits).
fn rot(x: &Block, bytes: usize) -> Block {
    std::array::from_fn(|i| x[(i + bytes) % 16])
}

/// Copies the first `N` octets of a block.
fn take<const N: usize>(x: &Block, from: usize) -> [u8; N] {
    std::array::from_fn(|i| x[from + i])
}

impl Milenage {
    /// Milenage for subscriber key `k` and the precomputed `opc`.
    pub fn new(k: &Block, opc: &Block) -> Self {
        Milenage {
            cipher: Aes128::new(k.into()),
            opc: *opc,
        }
    }

    /// Milenage for subscriber key `k` and operator variant `op` (OPc derived).
    pub fn with_op(k: &Block, op: &Block) -> Self {
        Milenage::new(k, &opc(k, op))
    }

    /// TEMP = E_K(RAND ⊕ OPc).
    fn temp(&self, rand: &Block) -> Block {
        encrypt(&self.cipher, &xor(rand, &self.opc))
    }

    /// OUTn = E_K(rot(TEMP ⊕ OPc, r) ⊕ c) ⊕ OPc for n = 2..5, where c has the single
    /// low-order byte `c_last`.
    fn out(&self, temp: &Block, r_bytes: usize, c_last: u8) -> Block {
        let mut x = rot(&xor(temp, &self.opc), r_bytes);
        x[15] ^= c_last;
        xor(&encrypt(&self.cipher, &x), &self.opc)
    }

    /// OUT1 = E_K(TEMP ⊕ rot(IN1 ⊕ OPc, r1) ⊕ c1) ⊕ OPc with IN1 = SQN‖AMF‖SQN‖AMF.
    fn out1(&self, rand: &Block, sqn: &[u8; 6], amf: &[u8; 2]) -> Block {
        let temp = self.temp(rand);
        let mut in1 = [0u8; 16];
        in1[..6].copy_from_slice(sqn);
        in1[6..8].copy_from_slice(amf);
        in1[8..14].copy_from_slice(sqn);
        in1[14..].copy_from_slice(amf);
        let x = xor(&temp, &rot(&xor(&in1, &self.opc), 8));
        xor(&encrypt(&self.cipher, &x), &self.opc)
    }

    /// f1: the network authentication code MAC-A.
    pub fn f1(&self, rand: &Block, sqn: &[u8; 6], amf: &[u8; 2]) -> [u8; 8] {
        take(&self.out1(rand, sqn, amf), 0)
    }

    /// f1*: the resynchronisation authentication code MAC-S.
    pub fn f1_star(&self, rand: &Block, sqn: &[u8; 6], amf: &[u8; 2]) -> [u8; 8] {
        take(&self.out1(rand, sqn, amf), 8)
    }

    /// f2, f3, f4 and f5 for one RAND.
    pub fn f2345(&self, rand: &Block) -> F2345 {
        let temp = self.temp(rand);
        let out2 = self.out(&temp, 0, 1);
        F2345 {
            res: take(&out2, 8),
            ak: take(&out2, 0),
            ck: self.out(&temp, 4, 2),
            ik: self.out(&temp, 8, 4),
        }
    }

    /// f5*: the anonymity key AK used for resynchronisation (AUTS).
    pub fn f5_star(&self, rand: &Block) -> [u8; 6] {
        take(&self.out(&self.temp(rand), 12, 8), 0)
    }
}
