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

conformance!(
    claims_are_exclusive,
    a_lapsed_claim_is_taken_over,
    a_restarted_instance_takes_up_its_own_claim,
    one_of_two_racing_completions_of_an_event_wins,
    an_expired_dedupe_key_is_free_again,
    a_chat_changed_since_it_was_read_refuses_the_completion,
    jobs_of_one_chat_go_in_order,
    job_claims_belong_to_their_instance,
    calls_handed_over_belong_to_the_completing_instance,
    pruning_keeps_what_is_not_processed,
    migrations_from_empty_and_from_the_previous_release,
    jobs_and_health_are_kept_per_channel,
    a_lease_has_one_holder_until_it_lapses,
);

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
