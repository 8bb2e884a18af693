//! The store conformance suite on SQLite: instances are handles on one database file.

use std::sync::Arc;

use riposte::store::{Instance, OpenOptions, Store};

use super::Backend;

struct Sqlite {
    dir: tempfile::TempDir,
}

impl Sqlite {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }
}

#[async_trait::async_trait]
impl Backend for Sqlite {
    async fn open(&self, instance: &str) -> Arc<dyn Store> {
        let path = self.dir.path().join("shared.db");
        let options = OpenOptions {
            instance: Instance::new(instance),
            ..OpenOptions::default()
        };
        riposte::store::open(&path.to_string_lossy(), options)
            .await
            .unwrap()
    }

    async fn previous_release(&self) -> Option<Arc<dyn Store>> {
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/db/jobs-2026-12.db"
        );
        let copy = self.dir.path().join("previous.db");
        std::fs::copy(fixture, &copy).unwrap();
        let address = format!("sqlite:{}", copy.display());
        Some(
            riposte::store::open(&address, OpenOptions::default())
                .await
                .unwrap(),
        )
    }
}

macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                super::$check(&Sqlite::new()).await;
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
async fn an_address_with_another_scheme_names_a_backend_this_build_lacks() {
    let err = riposte::store::open("mysql://localhost/riposte", OpenOptions::default())
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("`mysql://`"), "{err}");
    assert!(err.to_string().contains("postgres://"), "{err}");
}
