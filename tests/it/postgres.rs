//! A real PostgreSQL server for the tests, started once per test process: `initdb` into a
//! temporary folder as an unprivileged user, then `postgres` on a free loopback port. Each test
//! gets a database of its own. The server also speaks TLS with a certificate signed by an
//! authority made for the process, and one role (`tls_only`) may only connect over TLS.
//!
//! Where PostgreSQL is not installed the tests that need it say so and pass without running;
//! with `RIPOSTE_REQUIRE_POSTGRES=1` (as `.ci/run` sets) that is a failure instead.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Databases made so far, for unique names.
static DATABASES: AtomicU32 = AtomicU32::new(0);

struct Server {
    port: u16,
    /// The authority that signed the server's certificate (PEM).
    authority: PathBuf,
    _dir: tempfile::TempDir,
}

/// The role the server accepts over TLS only, for the tests of `sslmode`.
const TLS_ONLY: &str = "tls_only";

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();

/// The folder holding `initdb` and `postgres`: on the `PATH`, or Debian's versioned folder.
fn binaries() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find(|dir| dir.join("initdb").is_file() && dir.join("postgres").is_file());
    if on_path.is_some() {
        return on_path;
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

/// The user PostgreSQL runs as when the tests run as root (it refuses to run as root).
const NOBODY: u32 = 65534;

fn running_as_root() -> bool {
    // `/proc/self` belongs to the process's effective user.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Gives a folder to the unprivileged user, when there is one to give it to.
fn hand_over(dir: &Path) -> Result<(), String> {
    if !running_as_root() {
        return Ok(());
    }
    std::os::unix::fs::chown(dir, Some(NOBODY), Some(NOBODY))
        .map_err(|e| format!("cannot give {} to nobody: {e}", dir.display()))
}

/// Runs the command as the unprivileged user when the tests run as root.
fn unprivileged(command: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    if running_as_root() {
        command.uid(NOBODY).gid(NOBODY);
    }
    command
}

fn start() -> Result<Server, String> {
    let bin = binaries().ok_or("PostgreSQL is not installed (no initdb found)")?;
    let dir = tempfile::Builder::new()
        .prefix("riposte-pg-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let data = dir.path().join("data");
    std::fs::create_dir(&data).map_err(|e| e.to_string())?;
    hand_over(dir.path())?;
    hand_over(&data)?;
    let out = unprivileged(&mut Command::new(bin.join("initdb")))
        .args(["-D", &data.to_string_lossy()])
        .args(["-U", "riposte", "--auth=trust", "-E", "UTF8", "--no-sync"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let authority = certificates(dir.path(), &data)?;
    let hba = data.join("pg_hba.conf");
    let rules = std::fs::read_to_string(&hba).map_err(|e| e.to_string())?;
    // The first matching line decides: TLS is let in, the same role without it is not.
    let tls_only = format!(
        "hostssl all {TLS_ONLY} 127.0.0.1/32 trust\nhostnossl all {TLS_ONLY} 127.0.0.1/32 reject\n"
    );
    std::fs::write(&hba, tls_only + &rules).map_err(|e| e.to_string())?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    // A watcher stops the server (an immediate shutdown) once the test process is gone,
    // however it ended, and removes its folder: a static's folder is never dropped, and each
    // run would otherwise leave a few hundred megabytes behind. Nothing here needs to survive
    // a power cut: no fsync.
    let watcher = r#"
        "$1" -D "$2" -p "$3" -c listen_addresses=127.0.0.1 -c unix_socket_directories= \
             -c max_connections=300 -c fsync=off -c synchronous_commit=off \
             -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key >/dev/null 2>&1 &
        server=$!
        while [ -d "/proc/$4" ] && kill -0 "$server" 2>/dev/null; do sleep 1; done
        kill -QUIT "$server" 2>/dev/null
        wait "$server"
        rm -rf "$5"
    "#;
    unprivileged(&mut Command::new("sh"))
        .args(["-c", watcher, "postgres-watcher"])
        .arg(bin.join("postgres"))
        .arg(&data)
        .arg(port.to_string())
        .arg(std::process::id().to_string())
        .arg(dir.path())
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("postgres: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err("postgres did not start listening within 30 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Server {
        port,
        authority,
        _dir: dir,
    })
}

/// Makes an authority (its certificate in `dir/authority.pem`, returned) and, in the data
/// folder, a certificate for 127.0.0.1 it signed with its key, readable by the server only.
fn certificates(dir: &Path, data: &Path) -> Result<PathBuf, String> {
    let failed = |e: rcgen::Error| format!("cannot make the test certificates: {e}");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Riposte test authority");
    let key = rcgen::KeyPair::generate().map_err(failed)?;
    let authority = rcgen::CertifiedIssuer::self_signed(params, key).map_err(failed)?;
    let key = rcgen::KeyPair::generate().map_err(failed)?;
    let server = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .and_then(|p| p.signed_by(&key, &authority))
        .map_err(failed)?;
    let authority_file = dir.join("authority.pem");
    let written = [
        (authority_file.clone(), authority.pem()),
        (data.join("server.crt"), server.pem()),
        (data.join("server.key"), key.serialize_pem()),
    ];
    for (file, pem) in written {
        std::fs::write(&file, pem).map_err(|e| format!("{}: {e}", file.display()))?;
        hand_over(&file)?;
    }
    // PostgreSQL refuses a key file others can read.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        data.join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .map_err(|e| e.to_string())?;
    Ok(authority_file)
}

/// The address of a fresh, empty database on the test server, or `None` (said on stderr)
/// when PostgreSQL cannot be started here and it is not required.
pub(crate) async fn database() -> Option<String> {
    let (server, client, name) = fresh().await?;
    drop(client);
    Some(format!(
        "postgres://riposte@127.0.0.1:{}/{name}?sslmode=disable",
        server.port
    ))
}

/// A fresh database owned by the role that may only connect over TLS: its address without
/// `sslmode`, and the authority file that signed the server's certificate.
pub(crate) async fn tls_database() -> Option<(String, PathBuf)> {
    let (server, client, name) = fresh().await?;
    let role = format!(
        "DO $$ BEGIN CREATE ROLE {TLS_ONLY} LOGIN; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
    );
    client.batch_execute(&role).await.unwrap();
    client
        .batch_execute(&format!("ALTER DATABASE {name} OWNER TO {TLS_ONLY}"))
        .await
        .unwrap();
    Some((
        format!("postgres://{TLS_ONLY}@127.0.0.1:{}/{name}", server.port),
        server.authority.clone(),
    ))
}

/// The server, a connection to it as its superuser, and the name of a database just made.
async fn fresh() -> Option<(&'static Server, tokio_postgres::Client, String)> {
    let server = match SERVER.get_or_init(start) {
        Ok(server) => server,
        Err(why) => {
            assert!(
                std::env::var_os("RIPOSTE_REQUIRE_POSTGRES").is_none(),
                "PostgreSQL is required here but could not be started: {why}"
            );
            eprintln!("SKIPPED: PostgreSQL could not be started: {why}");
            return None;
        }
    };
    let name = format!(
        "t{}_{}",
        std::process::id(),
        DATABASES.fetch_add(1, Ordering::SeqCst)
    );
    let admin = format!(
        "postgres://riposte@127.0.0.1:{}/postgres?sslmode=disable",
        server.port
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = loop {
        match tokio_postgres::connect(&admin, tokio_postgres::NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(connection);
                break client;
            }
            // Listening comes before accepting connections while the server starts up.
            Err(err) if Instant::now() < deadline => {
                let _ = err;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(err) => panic!("cannot connect to the test PostgreSQL: {err}"),
        }
    };
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    Some((server, client, name))
}
