//! Attribute-Value Pairs (RFC 6733 §4, §4.1, §4.2, §4.3, §4.4).
//!
//! An [`Avp`] keeps its data as received; typed views ([`Avp::as_u32`],
//! [`Avp::as_address`], [`Avp::grouped`] ...) check the data against the format of
//! RFC 6733 §4.2/§4.3 when asked. Unknown AVPs are therefore carried and re-encoded
//! verbatim.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};

use crate::dict::AvpDef;
use crate::error::DecodeError;

/// AVP flag 'V' (Vendor-Specific), RFC 6733 §4.1.
pub const FLAG_VENDOR: u8 = 0x80;
/// AVP flag 'M' (Mandatory), RFC 6733 §4.1.
pub const FLAG_MANDATORY: u8 = 0x40;
/// AVP flag 'P' (end-to-end security, deprecated), RFC 6733 §4.1.
pub const FLAG_PROTECTED: u8 = 0x20;

/// Seconds between the NTP epoch (1900) and the Unix epoch (1970), for the Time format.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// One AVP: code, flags, optional Vendor-ID and its (unpadded) data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Avp {
    /// AVP Code.
    pub code: u32,
    /// Flags octet (V, M, P and the reserved bits as received).
    pub flags: u8,
    /// Vendor-ID; present exactly when the V bit is set.
    pub vendor_id: Option<u32>,
    /// Data, without padding.
    pub data: Bytes,
}

/// Address family numbers (IANA "Address Family Numbers") used by the Address format.
const FAMILY_IPV4: u16 = 1;
const FAMILY_IPV6: u16 = 2;

impl Avp {
    /// A new AVP with the V/M flags and vendor of the dictionary entry `def`.
    pub fn new(def: &AvpDef, data: impl Into<Bytes>) -> Avp {
        let mut flags = 0;
        if def.mandatory {
            flags |= FLAG_MANDATORY;
        }
        if def.vendor_id.is_some() {
            flags |= FLAG_VENDOR;
        }
        Avp {
            code: def.code,
            flags,
            vendor_id: def.vendor_id,
            data: data.into(),
        }
    }

    /// Unsigned32 AVP.
    pub fn u32(def: &AvpDef, v: u32) -> Avp {
        Avp::new(def, Bytes::copy_from_slice(&v.to_be_bytes()))
    }

    /// Unsigned64 AVP.
    pub fn u64(def: &AvpDef, v: u64) -> Avp {
        Avp::new(def, Bytes::copy_from_slice(&v.to_be_bytes()))
    }

    /// Integer32 / Enumerated AVP.
    pub fn i32(def: &AvpDef, v: i32) -> Avp {
        Avp::new(def, Bytes::copy_from_slice(&v.to_be_bytes()))
    }

    /// Integer64 AVP.
    pub fn i64(def: &AvpDef, v: i64) -> Avp {
        Avp::new(def, Bytes::copy_from_slice(&v.to_be_bytes()))
    }

    /// UTF8String, DiameterIdentity or DiameterURI AVP.
    pub fn utf8(def: &AvpDef, v: &str) -> Avp {
        Avp::new(def, Bytes::copy_from_slice(v.as_bytes()))
    }

    /// Address AVP (RFC 6733 §4.3.1): 2-octet family then the address.
    pub fn address(def: &AvpDef, ip: IpAddr) -> Avp {
        let mut b = BytesMut::with_capacity(18);
        match ip {
            IpAddr::V4(a) => {
                b.put_u16(FAMILY_IPV4);
                b.put_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                b.put_u16(FAMILY_IPV6);
                b.put_slice(&a.octets());
            }
        }
        Avp::new(def, b.freeze())
    }

    /// Time AVP (RFC 6733 §4.3.1): seconds since 1900-01-01 UTC, modulo 2^32.
    pub fn time(def: &AvpDef, t: SystemTime) -> Avp {
        let unix = t
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        // The NTP era rolls over in 2036; the format keeps the low 32 bits.
        let ntp = (unix + NTP_UNIX_OFFSET) as u32;
        Avp::u32(def, ntp)
    }

    /// Grouped AVP (RFC 6733 §4.4) holding `children`.
    pub fn grouped(def: &AvpDef, children: &[Avp]) -> Avp {
        let mut b = BytesMut::new();
        for c in children {
            c.encode(&mut b);
        }
        Avp::new(def, b.freeze())
    }

    /// Whether this AVP is the dictionary entry `def` (same code and vendor).
    pub fn is(&self, def: &AvpDef) -> bool {
        self.code == def.code && self.vendor_id == def.vendor_id
    }

    /// The M bit.
    pub fn is_mandatory(&self) -> bool {
        self.flags & FLAG_MANDATORY != 0
    }

    /// Length of the AVP header (8, or 12 with a Vendor-ID).
    fn header_len(&self) -> usize {
        if self.vendor_id.is_some() {
            12
        } else {
            8
        }
    }

    /// The AVP Length field: header plus data, without padding.
    pub fn len(&self) -> usize {
        self.header_len() + self.data.len()
    }

    /// Whether the data is empty (an OctetString of length 0).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Octets this AVP occupies on the wire, with padding to 4 octets.
    pub fn padded_len(&self) -> usize {
        (self.len() + 3) & !3
    }

    /// Appends the encoded AVP, padding included, to `buf`.
    ///
    /// The V bit is written to agree with `vendor_id`.
    pub fn encode(&self, buf: &mut BytesMut) {
        let len = self.len();
        buf.reserve(self.padded_len());
        buf.put_u32(self.code);
        let flags = if self.vendor_id.is_some() {
            self.flags | FLAG_VENDOR
        } else {
            self.flags & !FLAG_VENDOR
        };
        // The 24-bit length: messages are bounded well below 2^24 by the codec.
        buf.put_u32((u32::from(flags) << 24) | (len as u32 & 0x00ff_ffff));
        if let Some(v) = self.vendor_id {
            buf.put_u32(v);
        }
        buf.put_slice(&self.data);
        buf.put_bytes(0, self.padded_len() - len);
    }

    /// Decodes one AVP at the start of `buf`; returns it and the octets it used
    /// (padding included; padding may be absent after the last AVP of a message).
    pub fn decode(buf: &Bytes) -> Result<(Avp, usize), DecodeError> {
        let head = buf.get(..8).ok_or(DecodeError::AvpTruncated {
            available: buf.len(),
        })?;
        let code = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let flags = head[4];
        let len = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
        let vendor = flags & FLAG_VENDOR != 0;
        let header_len = if vendor { 12 } else { 8 };
        if len < header_len {
            return Err(DecodeError::AvpLengthTooShort { code, len });
        }
        if len > buf.len() {
            return Err(DecodeError::AvpLengthBeyondData {
                code,
                len,
                available: buf.len(),
            });
        }
        let vendor_id = if vendor {
            let v = buf
                .get(8..12)
                .ok_or(DecodeError::AvpLengthTooShort { code, len })?;
            Some(u32::from_be_bytes([v[0], v[1], v[2], v[3]]))
        } else {
            None
        };
        let data = buf.slice(header_len..len);
        let padded = ((len + 3) & !3).min(buf.len());
        Ok((
            Avp {
                code,
                flags,
                vendor_id,
                data,
            },
            padded,
        ))
    }

    /// Decodes a sequence of AVPs filling `buf` exactly.
    pub fn decode_all(buf: &Bytes) -> Result<Vec<Avp>, DecodeError> {
        let mut avps = Vec::new();
        let mut rest = buf.clone();
        while !rest.is_empty() {
            let (avp, used) = Avp::decode(&rest)?;
            avps.push(avp);
            rest = rest.slice(used..);
        }
        Ok(avps)
    }

    fn fixed<const N: usize>(&self) -> Result<[u8; N], DecodeError> {
        <[u8; N]>::try_from(&self.data[..]).map_err(|_| DecodeError::AvpDataLength {
            code: self.code,
            expected: N,
            found: self.data.len(),
        })
    }

    /// Unsigned32 (and Enumerated values read as unsigned).
    pub fn as_u32(&self) -> Result<u32, DecodeError> {
        self.fixed::<4>().map(u32::from_be_bytes)
    }

    /// Unsigned64.
    pub fn as_u64(&self) -> Result<u64, DecodeError> {
        self.fixed::<8>().map(u64::from_be_bytes)
    }

    /// Integer32 and Enumerated.
    pub fn as_i32(&self) -> Result<i32, DecodeError> {
        self.fixed::<4>().map(i32::from_be_bytes)
    }

    /// Integer64.
    pub fn as_i64(&self) -> Result<i64, DecodeError> {
        self.fixed::<8>().map(i64::from_be_bytes)
    }

    /// UTF8String, DiameterIdentity, DiameterURI.
    pub fn as_utf8(&self) -> Result<&str, DecodeError> {
        std::str::from_utf8(&self.data).map_err(|_| DecodeError::AvpNotUtf8 { code: self.code })
    }

    /// Address (RFC 6733 §4.3.1): IPv4 or IPv6 only.
    pub fn as_address(&self) -> Result<IpAddr, DecodeError> {
        let bad = DecodeError::AvpBadAddress { code: self.code };
        let (fam, addr) = self.data.split_at_checked(2).ok_or(bad.clone())?;
        match (u16::from_be_bytes([fam[0], fam[1]]), addr.len()) {
            (FAMILY_IPV4, 4) => Ok(IpAddr::from(<[u8; 4]>::try_from(addr).map_err(|_| bad)?)),
            (FAMILY_IPV6, 16) => Ok(IpAddr::from(<[u8; 16]>::try_from(addr).map_err(|_| bad)?)),
            _ => Err(bad),
        }
    }

    /// Time (RFC 6733 §4.3.1), read in the NTP era starting 1900 (values with the high
    /// bit clear are taken in the era starting 2036, as RFC 5905 suggests).
    pub fn as_time(&self) -> Result<SystemTime, DecodeError> {
        let ntp = u64::from(self.as_u32()?);
        let ntp = if ntp & 0x8000_0000 == 0 {
            ntp + (1 << 32)
        } else {
            ntp
        };
        Ok(UNIX_EPOCH + Duration::from_secs(ntp.saturating_sub(NTP_UNIX_OFFSET)))
    }

    /// The AVPs inside a Grouped AVP (RFC 6733 §4.4).
    pub fn grouped_avps(&self) -> Result<Vec<Avp>, DecodeError> {
        Avp::decode_all(&self.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dict::{base, cx};

    #[test]
    fn encodes_vendor_avp_with_padding() {
        let avp = Avp::utf8(&cx::PUBLIC_IDENTITY, "sip:a");
        let mut b = BytesMut::new();
        avp.encode(&mut b);
        // code 601, flags V|M, length 12 + 5 = 17, vendor 10415, data, 3 octets padding.
        assert_eq!(hex::encode(&b), "00000259c0000011000028af7369703a61000000");
        let (back, used) = Avp::decode(&b.freeze()).unwrap();
        assert_eq!(used, 20);
        assert_eq!(back, avp);
    }

    #[test]
    fn rejects_short_lengths() {
        // Length 7 without V bit.
        let b = Bytes::from_static(&[0, 0, 1, 7, 0x40, 0, 0, 7]);
        assert!(matches!(
            Avp::decode(&b),
            Err(DecodeError::AvpLengthTooShort { code: 263, len: 7 })
        ));
        // Length 8 with the V bit (needs 12).
        let b = Bytes::from_static(&[0, 0, 1, 7, 0xc0, 0, 0, 8, 0, 0, 0, 0]);
        assert!(matches!(
            Avp::decode(&b),
            Err(DecodeError::AvpLengthTooShort { code: 263, len: 8 })
        ));
        // Length beyond the data present.
        let b = Bytes::from_static(&[0, 0, 1, 7, 0x40, 0, 0, 40, 1, 2, 3, 4]);
        assert!(matches!(
            Avp::decode(&b),
            Err(DecodeError::AvpLengthBeyondData { len: 40, .. })
        ));
        // Fewer than 8 octets.
        assert!(Avp::decode(&Bytes::from_static(&[0, 0, 1])).is_err());
    }

    #[test]
    fn typed_values_round_trip() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let a = Avp::address(&base::HOST_IP_ADDRESS, v4);
        assert_eq!(&a.data[..], &[0, 1, 192, 0, 2, 1]);
        assert_eq!(a.as_address().unwrap(), v4);
        assert_eq!(
            Avp::address(&base::HOST_IP_ADDRESS, v6)
                .as_address()
                .unwrap(),
            v6
        );
        assert_eq!(Avp::u32(&base::RESULT_CODE, 2001).as_u32().unwrap(), 2001);
        assert_eq!(
            Avp::u64(&base::RESULT_CODE, 1 << 40).as_u64().unwrap(),
            1 << 40
        );
        assert_eq!(Avp::i32(&base::RESULT_CODE, -5).as_i32().unwrap(), -5);
        assert_eq!(Avp::i64(&base::RESULT_CODE, -5).as_i64().unwrap(), -5);
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let ta = Avp::time(&base::ORIGIN_STATE_ID, t);
        assert_eq!(
            ta.as_u32().unwrap(),
            (1_700_000_000u64 + NTP_UNIX_OFFSET) as u32
        );
        assert_eq!(ta.as_time().unwrap(), t);
        // Wrong sizes are errors, not panics.
        assert!(Avp::u32(&base::RESULT_CODE, 1).as_u64().is_err());
        let bad = Avp::new(&base::HOST_IP_ADDRESS, Bytes::from_static(&[0, 1, 1]));
        assert!(bad.as_address().is_err());
        let bad = Avp::new(&base::ORIGIN_HOST, Bytes::from_static(&[0xff]));
        assert!(bad.as_utf8().is_err());
    }

    #[test]
    fn grouped_round_trip() {
        let g = Avp::grouped(
            &base::EXPERIMENTAL_RESULT,
            &[
                Avp::u32(&base::VENDOR_ID, 10415),
                Avp::u32(&base::EXPERIMENTAL_RESULT_CODE, 2001),
            ],
        );
        let inner = g.grouped_avps().unwrap();
        assert_eq!(inner.len(), 2);
        assert_eq!(inner[1].as_u32().unwrap(), 2001);
    }
}
