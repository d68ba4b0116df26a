//! Throughput of the registrar's store writes alone: `--concurrency` tasks persist
//! registrations (one binding each, a realistic profile) of `--users` identities into a
//! SQLite file in a temporary directory, the way the registrar does after each SAR (the
//! identity's lock held across the group-commit writer's commit), until `--total` are
//! done. Prints saves per second, SQL transactions per save and the process's CPU
//! (utime+stime) per save. `--serial` instead writes each registration in a transaction
//! of its own under one global lock, as the registrar did before the group commit.
//!
//! ```text
//! cargo run --release -p scscf --example store_writes -- --concurrency 256 --total 50000
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use clap::Parser;
use scscf::identity_lock::{IdentityLocks, SHARDS};
use scscf::location::{Binding, Registration};
use scscf::profile::UserProfile;
use scscf::store::writer::{StoreWriter, MAX_BATCH};
use scscf::store::{BindingStore, Change};

#[derive(Parser, Debug)]
struct Args {
    /// Registrations in flight at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Registrations persisted in all.
    #[arg(long, default_value_t = 20_000)]
    total: u64,
    /// Distinct identities (registration i is of identity i % users).
    #[arg(long, default_value_t = 4_000)]
    users: u64,
    /// One transaction per registration under one global lock (no group commit).
    #[arg(long)]
    serial: bool,
}

fn registration(user: u64, n: u64) -> anyhow::Result<Registration> {
    let impu = format!("sip:user{user}@ims.example.net");
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><IMSSubscription>\
         <PrivateID>user{user}@ims.example.net</PrivateID><ServiceProfile>\
         <PublicIdentity><Identity>{impu}</Identity></PublicIdentity>\
         <PublicIdentity><Identity>tel:+1555{user:07}</Identity></PublicIdentity>\
         <InitialFilterCriteria><Priority>10</Priority><TriggerPoint>\
         <ConditionTypeCNF>1</ConditionTypeCNF><SPT><ConditionNegated>0</ConditionNegated>\
         <Group>0</Group><Method>INVITE</Method></SPT></TriggerPoint>\
         <ApplicationServer><ServerName>sip:as.ims.example.net</ServerName>\
         <DefaultHandling>0</DefaultHandling></ApplicationServer></InitialFilterCriteria>\
         </ServiceProfile></IMSSubscription>"
    );
    let profile = UserProfile::parse(Bytes::from(xml))?;
    Ok(Registration {
        impu,
        impi: format!("user{user}@ims.example.net"),
        profile,
        bindings: vec![Binding {
            key: format!("uri:sip:user{user}@10.0.{}.{}:5060", user / 250, user % 250),
            contact: format!("<sip:user{user}@10.0.{}.{}:5060>", user / 250, user % 250),
            path: vec!["<sip:term@pcscf.ims.example.net:5060;lr>".into()],
            call_id: format!("reg-{user}"),
            cseq: u32::try_from(n).unwrap_or(u32::MAX),
            expires_at: 4_000_000_000,
            gruu_first_cseq: None,
        }],
    })
}

/// utime+stime of this process, in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields 14 and 15 of proc(5), 11 and 12 after the command; 100 ticks per second.
    (ticks(11) + ticks(12)) / 100.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("bindings.db").display());
    let store = BindingStore::open(&url).await?;
    let writer = StoreWriter::spawn(store.clone(), MAX_BATCH);
    let order = Arc::new(IdentityLocks::new(SHARDS));
    // The registrar's write lock before the group commit: every write in turn.
    let serial = Arc::new(tokio::sync::Mutex::new(()));
    let next = Arc::new(AtomicU64::new(0));
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (store, writer, next) = (store.clone(), writer.clone(), next.clone());
        let (order, serial) = (order.clone(), serial.clone());
        let (total, users, one_by_one) = (args.total, args.users.max(1), args.serial);
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return Ok::<(), anyhow::Error>(());
                }
                let reg = registration(n % users, n)?;
                if one_by_one {
                    let _w = serial.lock().await;
                    store.apply(&[Change::Save(reg)]).await?;
                } else {
                    let _order = order.lock([reg.impu.as_str()]).await;
                    writer.write(Change::Save(reg)).await?;
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
    let saves = args.total as f64;
    let transactions = if args.serial {
        saves
    } else {
        writer.stats().transactions as f64
    };
    println!(
        "{} concurrency {} total {} users {}: {:.0} saves/s, {:.3} transactions/save, \
         {:.1} µs CPU/save ({:.2} s wall, {:.2} s CPU)",
        if args.serial {
            "serial"
        } else {
            "group commit"
        },
        args.concurrency,
        args.total,
        args.users,
        saves / wall,
        transactions / saves,
        cpu * 1e6 / saves,
        wall,
        cpu
    );
    store.close().await;
    Ok(())
}
