//! Opens a fresh database per test and instantiates each test per backend.

use std::str::FromStr;

use cyrus_store::Store;
use sqlx::postgres::PgConnectOptions;
use tempfile::TempDir;

#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// A private database plus the means to open more handles ("replicas") on it.
pub struct TestDb {
    pub store: Store,
    kind: Kind,
    sqlite_url: Option<String>,
    pg_options: Option<PgConnectOptions>,
    _dir: Option<TempDir>,
}

impl TestDb {
    pub async fn open(kind: Kind) -> Option<TestDb> {
        match kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("cyrus.db").display());
                let store = Store::connect(&url)
                    .await
                    .unwrap_or_else(|e| panic!("connect {url}: {e}"));
                Some(TestDb {
                    store,
                    kind,
                    sqlite_url: Some(url),
                    pg_options: None,
                    _dir: Some(dir),
                })
            }
            Kind::Postgres => {
                let url = match std::env::var("CYRUS_TEST_POSTGRES_URL") {
                    Ok(url) if !url.is_empty() => url,
                    _ => {
                        if std::env::var("CI").is_ok_and(|v| v == "true") {
                            panic!(
                                "CYRUS_TEST_POSTGRES_URL is unset under CI=true: PostgreSQL tests must run"
                            );
                        }
                        eprintln!(
                            "!!! SKIPPING PostgreSQL store test: set CYRUS_TEST_POSTGRES_URL to run it !!!"
                        );
                        return None;
                    }
                };
                let schema = format!("cyrus_test_{}", uuid::Uuid::new_v4().simple());
                let admin = sqlx::PgPool::connect(&url)
                    .await
                    .unwrap_or_else(|e| panic!("connect to PostgreSQL for tests: {e}"));
                // The schema name is generated above from a UUID: safe to splice.
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                    .execute(&admin)
                    .await
                    .expect("create test schema");
                admin.close().await;
                let options = PgConnectOptions::from_str(&url)
                    .expect("test URL")
                    .options([("search_path", schema.as_str())]);
                let store = Store::connect_postgres_with(options.clone())
                    .await
                    .expect("connect schema");
                store.migrate().await.expect("migrate");
                Some(TestDb {
                    store,
                    kind,
                    sqlite_url: None,
                    pg_options: Some(options),
                    _dir: None,
                })
            }
        }
    }

    /// The SQLite database file (SQLite only), to inspect its bytes.
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        self.sqlite_url
            .as_deref()
            .and_then(|u| u.strip_prefix("sqlite://"))
            .map(std::path::PathBuf::from)
    }

    /// Runs `sql` straight on the database, bypassing the store (to play
    /// an attacker who edits rows).
    pub async fn raw_execute(&self, sql: &'static str) {
        self.raw_execute_owned(sql.to_string()).await
    }

    /// Makes the database refuse any row of `table` whose `column` is
    /// `poison` (a trigger that raises), to see how a batch holding one
    /// bad row fares. `table` and `column` are the test's own literals.
    pub async fn refuse_poison(&self, table: &'static str, column: &'static str) {
        let statements = match self.kind {
            Kind::Sqlite => vec![format!(
                "CREATE TRIGGER poison_{table} BEFORE INSERT ON {table}
                 WHEN NEW.{column} = 'poison'
                 BEGIN SELECT RAISE(ABORT, 'a poisoned row'); END"
            )],
            Kind::Postgres => vec![
                format!(
                    "CREATE FUNCTION poison_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
                     BEGIN
                         IF NEW.{column} = 'poison' THEN
                             RAISE EXCEPTION 'a poisoned row' USING ERRCODE = 'check_violation';
                         END IF;
                         RETURN NEW;
                     END $$"
                ),
                format!(
                    "CREATE TRIGGER poison_{table} BEFORE INSERT ON {table}
                     FOR EACH ROW EXECUTE FUNCTION poison_{table}()"
                ),
            ],
        };
        for sql in statements {
            self.raw_execute_owned(sql).await;
        }
    }

    /// Whether this is the PostgreSQL run of a test.
    pub fn is_postgres(&self) -> bool {
        matches!(self.kind, Kind::Postgres)
    }

    async fn raw_execute_owned(&self, sql: String) {
        let sql = sqlx::AssertSqlSafe(sql);
        match self.kind {
            Kind::Sqlite => {
                let pool = sqlx::SqlitePool::connect(self.sqlite_url.as_deref().unwrap())
                    .await
                    .expect("raw sqlite");
                sqlx::query(sql).execute(&pool).await.expect("raw execute");
                pool.close().await;
            }
            Kind::Postgres => {
                let pool = sqlx::PgPool::connect_with(self.pg_options.clone().unwrap())
                    .await
                    .expect("raw postgres");
                sqlx::query(sql).execute(&pool).await.expect("raw execute");
                pool.close().await;
            }
        }
    }

    /// The first column of every row `sql` returns, as text, bypassing the
    /// store (to see what is really stored).
    pub async fn raw_strings(&self, sql: &'static str) -> Vec<String> {
        match self.kind {
            Kind::Sqlite => {
                let pool = sqlx::SqlitePool::connect(self.sqlite_url.as_deref().unwrap())
                    .await
                    .expect("raw sqlite");
                let rows: Vec<(String,)> = sqlx::query_as(sql)
                    .fetch_all(&pool)
                    .await
                    .expect("raw query");
                pool.close().await;
                rows.into_iter().map(|r| r.0).collect()
            }
            Kind::Postgres => {
                let pool = sqlx::PgPool::connect_with(self.pg_options.clone().unwrap())
                    .await
                    .expect("raw postgres");
                let rows: Vec<(String,)> = sqlx::query_as(sql)
                    .fetch_all(&pool)
                    .await
                    .expect("raw query");
                pool.close().await;
                rows.into_iter().map(|r| r.0).collect()
            }
        }
    }

    /// Another independent handle (own pool) on the same database, standing
    /// in for a second replica.
    pub async fn replica(&self) -> Store {
        match self.kind {
            Kind::Sqlite => Store::connect(self.sqlite_url.as_deref().unwrap())
                .await
                .expect("replica"),
            Kind::Postgres => {
                let s = Store::connect_postgres_with(self.pg_options.clone().unwrap())
                    .await
                    .expect("replica");
                s.migrate().await.expect("migrate replica");
                s
            }
        }
    }
}

macro_rules! both {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = $crate::harness::TestDb::open($crate::harness::Kind::Sqlite).await.unwrap();
                    $crate::$module::$name(db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if let Some(db) = $crate::harness::TestDb::open($crate::harness::Kind::Postgres).await {
                        $crate::$module::$name(db).await;
                    }
                }
            )*
        }
    };
}
pub(crate) use both;
