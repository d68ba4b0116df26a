//! Schema migrations embedded in a node's binary, one text per backend: sqlx's
//! `migrate!` macro needs its `macros` feature, which builds both database drivers a
//! second time for the proc-macro, so the stores (the S-CSCF's bindings, the P-CSCF's
//! registrations, the HSS's subscribers) list their migration files with `include_str!` and run them through
//! [`migrator`].

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};

/// One migration: version, name, PostgreSQL text, SQLite text.
pub type Embedded = (i64, &'static str, &'static str, &'static str);

/// The migrator of `migrations` for PostgreSQL (`postgres`) or SQLite: applied in
/// version order, each in its transaction, under the database's migration lock (several
/// nodes may share one PostgreSQL database).
pub fn migrator(migrations: &'static [Embedded], postgres: bool) -> Migrator {
    let migrations = migrations
        .iter()
        .map(|(version, name, pg, lite)| {
            let sql = if postgres { pg } else { lite };
            Migration::new(
                *version,
                Cow::Borrowed(name),
                MigrationType::Simple,
                Cow::Borrowed(sql),
                false,
            )
        })
        .collect();
    Migrator {
        migrations: Cow::Owned(migrations),
        ignore_missing: false,
        locking: true,
        no_tx: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: [Embedded; 2] = [(1, "one", "pg 1", "lite 1"), (2, "two", "pg 2", "lite 2")];

    #[test]
    fn each_backend_gets_its_text_in_order() {
        for (postgres, texts) in [(true, ["pg 1", "pg 2"]), (false, ["lite 1", "lite 2"])] {
            let m = migrator(&TWO, postgres);
            let got: Vec<(i64, &str, &str)> = m
                .iter()
                .map(|x| (x.version, x.description.as_ref(), x.sql.as_ref()))
                .collect();
            assert_eq!(got, vec![(1, "one", texts[0]), (2, "two", texts[1])]);
            assert!(m.locking);
        }
    }
}
