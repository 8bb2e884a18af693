//! `sslmode` against a real PostgreSQL that speaks TLS with a certificate from an authority
//! made for the test, for a role it lets in over TLS only.

use riposte::store::{OpenOptions, StoreError};

async fn open(url: &str) -> Result<(), StoreError> {
    riposte::store::open(url, OpenOptions::default())
        .await
        .map(drop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_checks_the_certificate_against_sslrootcert() {
    let Some((url, authority)) = crate::postgres::tls_database().await else {
        return;
    };
    // The server refuses this role without TLS, so every success below went over TLS.
    let plain = open(&format!("{url}?sslmode=disable")).await.unwrap_err();
    assert!(plain.to_string().contains("no encryption"), "{plain}");

    let file = authority.display().to_string();
    let encoded: String =
        percent_encoding::utf8_percent_encode(&file, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    open(&format!("{url}?sslmode=require&sslrootcert={encoded}"))
        .await
        .unwrap();
    open(&format!("{url}?sslmode=verify-full&sslrootcert={encoded}"))
        .await
        .unwrap();

    // An authority the platform does not trust: refused, saying what to add.
    let untrusted = open(&format!("{url}?sslmode=require")).await.unwrap_err();
    let said = untrusted.to_string();
    assert!(said.contains("invalid peer certificate"), "{said}");
    assert!(said.contains("add sslrootcert=FILE"), "{said}");
    assert!(!said.contains(&file), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefer_encrypts_without_checking_as_libpq_does() {
    let Some((url, _)) = crate::postgres::tls_database().await else {
        return;
    };
    // No sslmode is `prefer`: the server offers TLS, so it is used (plaintext is refused).
    open(&url).await.unwrap();
    open(&format!("{url}?sslmode=prefer")).await.unwrap();
}

#[tokio::test]
async fn a_missing_root_file_is_named() {
    let err = open("postgres://u@127.0.0.1:1/db?sslmode=require&sslrootcert=/nonexistent/ca.pem")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("sslrootcert /nonexistent/ca.pem"), "{err}");
}
