//! The threads that own the SQLite connections.
//!
//! SQLite allows one writer at a time, so one thread owns the write connection and runs every
//! write waiting for it in one transaction (a group commit): a commit costs about as much for
//! one row as for hundreds, so under load each webhook waits for one commit, not a queue of
//! them. A write that fails is undone alone (the group runs again, each write in a savepoint,
//! see [`Write`]), and each caller is answered only once the commit that holds it is done. Short reads that the workers
//! make before they write run on the same thread, between transactions, where the pages they
//! need are already cached; reads that may take long (listings, audiences) run on reader
//! threads so they never hold up a webhook. A checkpointer thread copies the log into the
//! database file beside the writer, which finishes a checkpoint between two commits now and
//! then so the log starts afresh (see [`super::checkpoint`]).

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};

use super::checkpoint::Restarts;
use crate::store::{StoreError, StoreResult};

/// Most writes in one group commit.
const GROUP_COMMIT_MAX: usize = 1024;
/// A group commit this slow stalls every webhook in it: worth a warning.
const SLOW_COMMIT: Duration = Duration::from_millis(250);
/// Reader connections (listings and audiences; the workers read on the writer).
const READERS: usize = 2;

/// How the connections are set up.
#[derive(Debug, Clone)]
pub(super) struct Options {
    pub path: PathBuf,
    /// `PRAGMA synchronous`: `OFF`, `NORMAL` or `FULL`.
    pub synchronous: &'static str,
}

/// Handles to the connection threads; the threads end when the last handle is dropped.
#[derive(Clone)]
pub(super) struct Db {
    writer: mpsc::Sender<Command>,
    readers: std::sync::mpsc::Sender<Job>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").finish_non_exhaustive()
    }
}

/// A read: runs on a connection and sends its own result.
type Job = Box<dyn FnOnce(&Connection) + Send>;

enum Command {
    Read(Job),
    Write(Box<dyn Write>),
}

/// A write waiting for the group commit: runs inside the transaction, answers after it.
///
/// A write may run twice: first straight in the shared transaction, then, if any write of
/// the group failed there, again in a savepoint of its own after the transaction was rolled
/// back. So it must give the same result from the same database, whatever it did the first
/// time.
trait Write: Send {
    /// Runs the write; `alone` puts it in a savepoint so a failure undoes it and nothing
    /// else. Returns whether it succeeded.
    fn run(&mut self, conn: &Connection, alone: bool) -> bool;
    fn answer(self: Box<Self>, committed: Result<(), &str>);
}

struct PendingWrite<T, U, F, A> {
    work: F,
    /// Runs on the writer's thread once the commit is done, in the order of the writes.
    after: A,
    result: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<U>>,
}

impl<T, U, F, A> Write for PendingWrite<T, U, F, A>
where
    T: Send,
    U: Send,
    F: FnMut(&Connection) -> StoreResult<T> + Send,
    A: FnOnce(T) -> U + Send,
{
    fn run(&mut self, conn: &Connection, alone: bool) -> bool {
        let result = if alone {
            in_savepoint(conn, &mut self.work)
        } else {
            unwinding(|| (self.work)(conn))
        };
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn answer(self: Box<Self>, committed: Result<(), &str>) {
        let Self {
            work,
            after,
            result,
            reply,
        } = *self;
        // The write is done with what it captured; `after` may take what they share.
        drop(work);
        let result = match (result, committed) {
            (Some(Err(err)), _) => Err(err),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (_, Err(reason)) => Err(StoreError::Write(reason.to_owned())),
            (None, Ok(())) => Err(StoreError::Write("the write was not run".into())),
        };
        // The caller may have gone (a cancelled request); its write is committed anyway.
        let _ = reply.send(result.map(after));
    }
}

/// Runs `work`, turning a panic into an error so that one bad write cannot stop the writer.
fn unwinding<T>(work: impl FnOnce() -> StoreResult<T>) -> StoreResult<T> {
    std::panic::catch_unwind(AssertUnwindSafe(work))
        .unwrap_or_else(|_| Err(StoreError::Write("a database write panicked".into())))
}

/// Runs `work` in a savepoint: what it wrote stays if it succeeds and is undone if it fails
/// or panics, leaving the other writes of the transaction alone.
fn in_savepoint<T>(
    conn: &Connection,
    work: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    conn.prepare_cached("SAVEPOINT write")?.execute([])?;
    let result = unwinding(|| work(conn));
    if result.is_err() {
        conn.prepare_cached("ROLLBACK TO write")?.execute([])?;
    }
    conn.prepare_cached("RELEASE write")?.execute([])?;
    result
}

fn closed() -> StoreError {
    StoreError::Write("the database has stopped".into())
}

impl Db {
    /// Opens the connections (the writer first: it creates the file and sets WAL mode) and
    /// starts their threads; `prepare` runs on the writer before anything else (migrations).
    pub(super) fn open(
        options: &Options,
        prepare: impl FnOnce(&Connection) -> StoreResult<()>,
    ) -> StoreResult<Self> {
        let writer = connect(&options.path, options.synchronous, false)?;
        // SQLite would checkpoint inside a commit, before its webhooks are answered; the writer
        // does it after answering them instead.
        writer.pragma_update(None, "wal_autocheckpoint", 0)?;
        prepare(&writer)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(connect(&options.path, options.synchronous, true)?);
        }
        let checkpoints = connect(&options.path, options.synchronous, false)?;
        let (restarts, checkpointer) = Restarts::new();
        spawn("riposte-db-checkpoint", move || {
            checkpointer.run(&checkpoints)
        })?;
        let (write_tx, write_rx) = mpsc::channel(4 * GROUP_COMMIT_MAX);
        spawn("riposte-db-writer", move || {
            run_writer(&writer, write_rx, restarts);
        })?;
        let (read_tx, read_rx) = std::sync::mpsc::channel::<Job>();
        let read_rx = Arc::new(Mutex::new(read_rx));
        for conn in readers {
            let queue = read_rx.clone();
            spawn("riposte-db-reader", move || run_reader(&conn, &queue))?;
        }
        Ok(Self {
            writer: write_tx,
            readers: read_tx,
        })
    }

    /// Runs `work` in the next group commit and returns its result once that commit is done
    /// (`work` may run twice; see [`Write`]).
    pub(super) async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.write_then(work, |value| value).await
    }

    /// Like [`Db::write`], and once the commit is done `after` turns the result into the
    /// answer on the writer's thread: the writes of one group see their `after` run in the
    /// order they were written, before any later write or read runs.
    pub(super) async fn write_then<T, U, F, A>(&self, work: F, after: A) -> StoreResult<U>
    where
        T: Send + 'static,
        U: Send + 'static,
        F: FnMut(&Connection) -> StoreResult<T> + Send + 'static,
        A: FnOnce(T) -> U + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let pending = PendingWrite {
            work,
            after,
            result: None,
            reply,
        };
        self.writer
            .send(Command::Write(Box::new(pending)))
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Runs a short read on the writer's thread, between two commits: it sees every write
    /// answered so far.
    pub(super) async fn read_now<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (job, answer) = read_job(work);
        self.writer
            .send(Command::Read(job))
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Runs a read that may take long on a reader thread.
    pub(super) async fn read<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (job, answer) = read_job(work);
        self.readers.send(job).map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

/// A read for a connection thread, and where its result will arrive.
fn read_job<T, F>(work: F) -> (Job, oneshot::Receiver<StoreResult<T>>)
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
{
    let (reply, answer) = oneshot::channel();
    let job: Job = Box::new(move |conn| {
        let _ = reply.send(work(conn));
    });
    (job, answer)
}

fn spawn(name: &str, body: impl FnOnce() + Send + 'static) -> StoreResult<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(body)
        .map(drop)
        .map_err(|e| StoreError::Write(format!("cannot start a database thread: {e}")))
}

fn connect(path: &Path, synchronous: &str, read_only: bool) -> StoreResult<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    if !read_only {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // The log is cut back to this size once it has been copied into the database file.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    }
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Every statement of the store is prepared once per connection and kept.
    conn.set_prepared_statement_cache_capacity(256);
    Ok(conn)
}

fn run_writer(conn: &Connection, mut queue: mpsc::Receiver<Command>, mut restarts: Restarts) {
    let mut batch = Vec::with_capacity(GROUP_COMMIT_MAX);
    let mut reads: Vec<Job> = Vec::new();
    let mut writes: Vec<Box<dyn Write>> = Vec::with_capacity(GROUP_COMMIT_MAX);
    while queue.blocking_recv_many(&mut batch, GROUP_COMMIT_MAX) > 0 {
        for command in batch.drain(..) {
            match command {
                Command::Read(job) => reads.push(job),
                Command::Write(write) => writes.push(write),
            }
        }
        // Reads first, on the last committed state: a caller reads only after its own writes
        // were answered, so nothing in this batch can be what it needs to see. One read
        // transaction for all of them takes the file's locks once.
        if !reads.is_empty() {
            let _ = conn.prepare_cached("BEGIN").and_then(|mut s| s.execute([]));
            for job in reads.drain(..) {
                // A read that panics loses its answer, not the writer.
                let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(conn)));
            }
            if !conn.is_autocommit() {
                let _ = conn
                    .prepare_cached("COMMIT")
                    .and_then(|mut s| s.execute([]));
            }
        }
        if !writes.is_empty() {
            let started = Instant::now();
            let committed = commit_group(conn, &mut writes);
            let reason = committed.as_ref().err().map(ToString::to_string);
            for write in writes.drain(..) {
                write.answer(reason.as_deref().map_or(Ok(()), Err));
            }
            let took = started.elapsed();
            if took > SLOW_COMMIT {
                tracing::warn!("a database commit took {took:?}; webhooks waited for it");
            }
            // Between two commits, where nothing else writes.
            restarts.after_commit(conn);
        }
    }
}

fn commit_group(conn: &Connection, writes: &mut [Box<dyn Write>]) -> StoreResult<()> {
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    // A savepoint per write would copy every page a write touches before it changes it, for
    // the rare write that fails. So the group runs straight first, and only if a write fails
    // is it all undone and run again, each write in a savepoint, to undo that one alone.
    if !writes.iter_mut().all(|write| write.run(conn, false)) {
        // Some errors (a full disk) have SQLite roll the transaction back itself.
        if !conn.is_autocommit() {
            conn.prepare_cached("ROLLBACK")?.execute([])?;
        }
        conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        for write in writes.iter_mut() {
            write.run(conn, true);
        }
    }
    if let Err(err) = conn.prepare_cached("COMMIT")?.execute([]) {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(err.into());
    }
    Ok(())
}

fn run_reader(conn: &Connection, queue: &Mutex<std::sync::mpsc::Receiver<Job>>) {
    loop {
        let job = {
            let queue = queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            queue.recv()
        };
        let Ok(job) = job else { return };
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(conn)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::checkpoint::RESTART_EVERY;

    fn open(dir: &tempfile::TempDir) -> Db {
        let options = Options {
            path: dir.path().join("test.db"),
            synchronous: "OFF",
        };
        Db::open(&options, |conn| {
            Ok(conn.execute_batch("CREATE TABLE t (v TEXT NOT NULL UNIQUE)")?)
        })
        .unwrap()
    }

    fn insert(db: &Db, v: &'static str) -> impl Future<Output = StoreResult<()>> {
        db.write(move |conn| {
            conn.execute("INSERT INTO t (v) VALUES (?1)", [v])?;
            Ok(())
        })
    }

    async fn values(db: &Db) -> Vec<String> {
        db.read(|conn| {
            let mut s = conn.prepare("SELECT v FROM t ORDER BY v")?;
            let rows = s.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<String>, _>>()?)
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_failing_write_is_undone_alone_and_the_writes_beside_it_commit() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir);
        insert(&db, "a").await.unwrap();
        // Sent together, so they usually share a commit; what each leaves must not depend on it.
        let failing = db.write(|conn| {
            conn.execute("INSERT INTO t (v) VALUES ('half')", [])?;
            conn.execute("INSERT INTO t (v) VALUES ('a')", [])?;
            Ok(())
        });
        let (b, failed, c) = tokio::join!(insert(&db, "b"), failing, insert(&db, "c"));
        b.unwrap();
        c.unwrap();
        assert!(
            failed.unwrap_err().to_string().contains("UNIQUE"),
            "the failing write reports why"
        );
        assert_eq!(values(&db).await, ["a", "b", "c"]);
    }

    #[tokio::test]
    async fn a_write_that_panics_is_answered_with_an_error_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir);
        let panicked = db
            .write(|conn| -> StoreResult<()> {
                conn.execute("INSERT INTO t (v) VALUES ('lost')", [])?;
                panic!("a bug in a write")
            })
            .await;
        assert!(panicked.unwrap_err().to_string().contains("panicked"));
        insert(&db, "kept").await.unwrap();
        assert_eq!(values(&db).await, ["kept"]);
    }

    #[tokio::test]
    async fn the_log_starts_afresh_under_writes_that_never_pause() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir);
        // Every write adds a row and its index entry, at least 8 KB, to the log: one never
        // started afresh would hold them all (about seven times `written` here).
        let filler = "x".repeat(4000);
        let started = Instant::now();
        let mut written: u64 = 0;
        while written < 32 << 20 || started.elapsed() < RESTART_EVERY * 10 {
            let v = format!("{written}{filler}");
            db.write(move |conn| {
                conn.execute("INSERT INTO t (v) VALUES (?1)", [&v])?;
                Ok(())
            })
            .await
            .unwrap();
            written += 4096;
        }
        let log = std::fs::metadata(dir.path().join("test.db-wal"))
            .unwrap()
            .len();
        assert!(
            log < written,
            "the log holds {log} bytes after {written} were written"
        );
    }

    #[tokio::test]
    async fn reads_on_the_writer_see_every_write_answered_before_them() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir);
        for v in ["x", "y"] {
            insert(&db, v).await.unwrap();
            let n: i64 = db
                .read_now(|conn| Ok(conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?))
                .await
                .unwrap();
            assert_eq!(n, if v == "x" { 1 } else { 2 });
        }
    }
}
