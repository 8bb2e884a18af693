//! The store conformance suite on PostgreSQL: instances are stores opened on one database of
//! a server the tests start themselves.

use std::sync::Arc;

use riposte::store::{Instance, OpenOptions, Store};

use super::Backend;

struct Postgres {
    url: String,
}

#[async_trait::async_trait]
impl Backend for Postgres {
    async fn open(&self, instance: &str) -> Arc<dyn Store> {
        let options = OpenOptions {
            instance: Instance::new(instance),
            ..OpenOptions::default()
        };
        riposte::store::open(&self.url, options).await.unwrap()
    }

    async fn previous_release(&self) -> Option<Arc<dyn Store>> {
        // No release before this one wrote PostgreSQL.
        None
    }
}

macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let Some(url) = crate::postgres::database().await else {
                    return;
                };
                super::$check(&Postgres { url }).await;
            }
        )*
    };
}

super::every_check!(conformance);

#[tokio::test]
async fn instances_starting_together_migrate_once() {
    let Some(url) = crate::postgres::database().await else {
        return;
    };
    let opens = (0..4).map(|n| {
        let url = url.clone();
        tokio::spawn(async move {
            let options = OpenOptions {
                instance: Instance::new(format!("i{n}")),
                ..OpenOptions::default()
            };
            riposte::store::open(&url, options).await.map(|_| ())
        })
    });
    for open in opens {
        open.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn a_wrong_address_is_refused_without_repeating_the_password() {
    let err = riposte::store::open(
        "postgres://riposte:s3cret@127.0.0.1:1/none?sslmode=disable",
        OpenOptions::default(),
    )
    .await
    .err()
    .unwrap()
    .to_string();
    assert!(!err.contains("s3cret"), "{err}");
    assert!(err.contains("postgres"), "{err}");
}
