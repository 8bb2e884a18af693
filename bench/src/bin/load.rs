//! The load driver: runs wrk against the naive reference bot and against Riposte in the same
//! run, each with its own stand-in Whapi.Cloud, and prints one table (medians of `--runs`).
//!
//! `bench/load.sh` builds the binaries and calls this; see `docs/PERFORMANCE.md`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use riposte_bench::median;
use serde_json::Value;

#[path = "../../../benches/support/generate.rs"]
mod generate;

/// What one scenario is: which system, how many rules, whether rules reload during the load.
#[derive(Clone, Copy)]
enum System {
    Naive,
    Riposte {
        rules: usize,
        reload_every: Option<Duration>,
    },
    /// Instances of Riposte on one PostgreSQL database, the load spread over them.
    Shared {
        rules: usize,
        instances: usize,
    },
}

impl System {
    fn label(self) -> String {
        match self {
            Self::Naive => "naive Rust bot (nothing stored)".into(),
            Self::Riposte {
                rules,
                reload_every: None,
            } => format!("Riposte, {rules} rules"),
            Self::Riposte {
                rules,
                reload_every: Some(every),
            } => {
                format!(
                    "Riposte, {rules} rules, reloaded every {} s",
                    every.as_secs()
                )
            }
            Self::Shared { rules, instances } => format!(
                "Riposte on PostgreSQL, {instances} instance{}, {rules} rules",
                if instances == 1 { "" } else { "s" }
            ),
        }
    }
}

/// A system under one kind of load: as fast as it answers (`pace: None`, each connection sends
/// its next request as soon as it has the answer) or paced at about `pace` requests a second
/// (each connection waits between an answer and its next request).
#[derive(Clone, Copy)]
struct Scenario {
    system: System,
    pace: Option<u32>,
}

impl Scenario {
    fn label(self) -> String {
        match self.pace {
            None => self.system.label(),
            Some(pace) => format!("{}, paced at {pace}/s", self.system.label()),
        }
    }

    fn is_naive(self) -> bool {
        matches!(self.system, System::Naive)
    }
}

/// One scenario's figures from one run.
#[derive(Default, Clone)]
struct Figures {
    events_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    e2e_p99_ms: f64,
    expected: f64,
    received: f64,
    duplicates: f64,
    rss_mb: f64,
    ready_ms: f64,
    reloads: f64,
    /// CPU time per event of Riposte's processes and of PostgreSQL's, in µs.
    cpu_riposte_us: f64,
    cpu_postgres_us: f64,
}

struct Options {
    bin: PathBuf,
    duration: u64,
    connections: u32,
    threads: u32,
    runs: usize,
    /// Leave the rules and databases behind for a look.
    keep: bool,
    /// A PostgreSQL server (`postgres://user@host:port`) for the rows of several instances.
    postgres: Option<String>,
    scenarios: Vec<Scenario>,
}

#[tokio::main]
async fn main() {
    let options = parse_args();
    let work = std::env::temp_dir().join(format!("riposte-load-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("work dir");
    let mut results: Vec<Vec<Figures>> = vec![Vec::new(); options.scenarios.len()];
    for run in 1..=options.runs {
        for (i, &scenario) in options.scenarios.iter().enumerate() {
            eprintln!("run {run}/{}: {}", options.runs, scenario.label());
            let dir = work.join(format!("{run}-{i}"));
            results[i].push(measure(&options, scenario, &dir, run).await);
            let figures = &results[i][run - 1];
            // The naive bot comes first under each load, so its figures of this run are in.
            let naive_now = reference_of(&options.scenarios, scenario)
                .and_then(|n| results[n].get(run - 1))
                .map(|n| n.events_per_s)
                .filter(|n| *n > 0.0);
            let ratio = naive_now.map(|n| figures.events_per_s / n);
            eprintln!("  {}", row(&scenario.label(), figures, ratio));
        }
    }
    let mut starts = Vec::new();
    let mut fanouts = Vec::new();
    for run in 1..=options.runs {
        let dir = work.join(format!("{run}-extra"));
        starts.push(start_time(&options, &dir).await);
        fanouts.push(fan_out(&options, &dir, FAN_OUT));
        eprintln!(
            "run {run}/{}: ready after {:.0} ms, {FAN_OUT} recipients planned in {:.2} s",
            options.runs,
            starts[run - 1],
            fanouts[run - 1]
        );
    }
    let medians: Vec<Figures> = results.iter().map(|r| median_of(r)).collect();
    // Each system against the naive bot of the same run (the machine's speed drifts between
    // runs), then the median of those ratios.
    let ratios: Vec<Option<f64>> = results
        .iter()
        .zip(&options.scenarios)
        .map(|(runs, &scenario)| {
            let naive = &results[reference_of(&options.scenarios, scenario)?];
            let same_run: Vec<f64> = runs
                .iter()
                .zip(naive)
                .filter(|(_, n)| n.events_per_s > 0.0)
                .map(|(f, n)| f.events_per_s / n.events_per_s)
                .collect();
            (!same_run.is_empty()).then(|| median(&same_run))
        })
        .collect();
    println!(
        "\n{} runs of {} s, {} connections, {} wrk threads; medians (vs naive: median of the same-run ratios)\n",
        options.runs, options.duration, options.connections, options.threads
    );
    println!(
        "| system | events/s | p50 | p99 | end-to-end p99 | calls expected / received / duplicates | peak RSS | ready | reloads | vs naive |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for ((scenario, figures), ratio) in options.scenarios.iter().zip(&medians).zip(&ratios) {
        println!("{}", row(&scenario.label(), figures, *ratio));
    }
    for (scenario, figures) in options.scenarios.iter().zip(&medians) {
        if matches!(scenario.system, System::Shared { .. }) {
            println!(
                "\n{}: CPU per event {:.0} µs in Riposte, {:.0} µs in PostgreSQL.",
                scenario.label(),
                figures.cpu_riposte_us,
                figures.cpu_postgres_us
            );
        }
    }
    println!(
        "\nStart with the default rules: `/readyz` 200 after {:.0} ms. Fan-out: a campaign to {FAN_OUT} recipients planned and enqueued in {:.2} s (medians of {} runs).",
        median(&starts),
        median(&fanouts),
        options.runs
    );
    if options.keep {
        eprintln!("kept {}", work.display());
    } else {
        let _ = std::fs::remove_dir_all(&work);
    }
}

/// Where in `scenarios` the naive bot under the same load as `scenario` is.
fn reference_of(scenarios: &[Scenario], scenario: Scenario) -> Option<usize> {
    scenarios
        .iter()
        .position(|s| s.is_naive() && s.pace == scenario.pace)
}

fn row(label: &str, f: &Figures, ratio: Option<f64>) -> String {
    let mut out = format!(
        "| {label} | {:.0} | {:.2} ms | {:.2} ms | {:.1} ms | {:.0} / {:.0} / {:.0} | {:.1} MB | ",
        f.events_per_s,
        f.p50_ms,
        f.p99_ms,
        f.e2e_p99_ms,
        f.expected,
        f.received,
        f.duplicates,
        f.rss_mb
    );
    let _ = if f.ready_ms > 0.0 {
        write!(out, "{:.0} ms | ", f.ready_ms)
    } else {
        write!(out, "– | ")
    };
    let _ = if f.reloads > 0.0 {
        write!(out, "{:.0} | ", f.reloads)
    } else {
        write!(out, "– | ")
    };
    let _ = match ratio {
        Some(r) => write!(out, "{:.0} % |", 100.0 * r),
        None => write!(out, "– |"),
    };
    out
}

fn median_of(runs: &[Figures]) -> Figures {
    let m = |get: fn(&Figures) -> f64| median(&runs.iter().map(get).collect::<Vec<_>>());
    Figures {
        events_per_s: m(|f| f.events_per_s),
        p50_ms: m(|f| f.p50_ms),
        p99_ms: m(|f| f.p99_ms),
        e2e_p99_ms: m(|f| f.e2e_p99_ms),
        expected: m(|f| f.expected),
        received: m(|f| f.received),
        duplicates: runs.iter().map(|f| f.duplicates).fold(0.0, f64::max),
        rss_mb: m(|f| f.rss_mb),
        ready_ms: m(|f| f.ready_ms),
        reloads: m(|f| f.reloads),
        cpu_riposte_us: m(|f| f.cpu_riposte_us),
        cpu_postgres_us: m(|f| f.cpu_postgres_us),
    }
}

fn parse_args() -> Options {
    let mut options = Options {
        // The binaries built with the driver (`target/dist` from `bench/load.sh`).
        bin: std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("target/dist")),
        duration: 10,
        connections: 32,
        threads: 2,
        runs: 3,
        keep: false,
        postgres: None,
        scenarios: Vec::new(),
    };
    let mut rules = vec![1_000];
    let mut reload_rules = Some(10_000);
    let mut paces = vec![4_000, 8_000];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--bin" => options.bin = PathBuf::from(value()),
            "--duration" => options.duration = number(&value()),
            "--connections" => options.connections = number(&value()),
            "--threads" => options.threads = number(&value()),
            "--runs" => options.runs = number(&value()),
            "--keep" => options.keep = true,
            "--postgres" => options.postgres = Some(value()),
            "--rules" => rules = value().split(',').map(number).collect(),
            "--reload-rules" => {
                reload_rules = Some(number(&value())).filter(|&n: &usize| n > 0);
            }
            "--paced" => {
                paces = value()
                    .split(',')
                    .map(number)
                    .filter(|&p: &u32| p > 0)
                    .collect();
            }
            other => usage(&format!("unknown argument `{other}`")),
        }
    }
    let saturating = |system| Scenario { system, pace: None };
    options.scenarios.push(saturating(System::Naive));
    for &n in &rules {
        options.scenarios.push(saturating(System::Riposte {
            rules: n,
            reload_every: None,
        }));
    }
    if let (Some(_), Some(&n)) = (&options.postgres, rules.first()) {
        for instances in [1, 3] {
            options.scenarios.push(saturating(System::Shared {
                rules: n,
                instances,
            }));
        }
    }
    if let Some(n) = reload_rules {
        let every = Some(Duration::from_secs(2));
        options.scenarios.push(saturating(System::Riposte {
            rules: n,
            reload_every: every,
        }));
    }
    // Latency at a rate both can serve, against the first rule count.
    for pace in paces {
        let paced = |system| Scenario {
            system,
            pace: Some(pace),
        };
        options.scenarios.push(paced(System::Naive));
        if let Some(&n) = rules.first() {
            options.scenarios.push(paced(System::Riposte {
                rules: n,
                reload_every: None,
            }));
        }
    }
    options
}

fn number<T: std::str::FromStr>(text: &str) -> T {
    text.parse()
        .unwrap_or_else(|_| usage(&format!("`{text}` is not a number")))
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "{problem}\nusage: load [--bin DIR (default: the driver's own)] [--duration S] [--connections N] [--threads N] [--runs N] [--rules N,N] [--reload-rules N|0] [--paced N,N|0] [--postgres postgres://USER@HOST:PORT] [--keep]"
    );
    std::process::exit(2)
}

/// Recipients of the fan-out measurement.
const FAN_OUT: usize = 100_000;

/// Milliseconds from starting Riposte on the shipped default rules to `/readyz` answering 200.
async fn start_time(options: &Options, dir: &Path) -> f64 {
    std::fs::create_dir_all(dir).expect("start dir");
    let addr = format!("127.0.0.1:{}", free_port());
    let db = dir.join("start.db").to_string_lossy().into_owned();
    let started = Instant::now();
    let _server = spawn(
        &options.bin,
        "riposte",
        &[
            "serve",
            "--listen",
            &addr,
            "--rules",
            "rules",
            "--db",
            &db,
            "--no-watch",
        ],
        &[("RUST_LOG", "warn")],
    );
    let http = reqwest::Client::new();
    wait_ready(
        &http,
        &format!("http://{addr}/readyz"),
        Duration::from_secs(30),
    )
    .await
    .expect("Riposte did not become ready");
    started.elapsed().as_secs_f64() * 1000.0
}

/// Seconds `riposte campaigns run` reports for planning and enqueueing a campaign to
/// `recipients` contacts from a CSV audience.
fn fan_out(options: &Options, dir: &Path, recipients: usize) -> f64 {
    let rules = dir.join("fan-out");
    std::fs::create_dir_all(&rules).expect("fan-out dir");
    std::fs::write(
        rules.join("campaign.yaml"),
        "campaigns:\n  - name: bulk\n    schedule: \"0 9 1 1 *\"\n    audience: {file: audience.csv}\n    send: \"Hi {{ contact.attrs.first_name }}, this week's deals: https://example.com/deals\"\n    rate: 600/min\n",
    )
    .expect("write campaign");
    let mut csv = String::from("phone,first_name\n");
    for i in 0..recipients {
        let _ = writeln!(csv, "{},Guest{i}", 491_700_000_000_u64 + i as u64);
    }
    std::fs::write(rules.join("audience.csv"), csv).expect("write audience");
    let output = Command::new(options.bin.join("riposte"))
        .args(["campaigns", "run", "bulk", "--rules"])
        .arg(&rules)
        .arg("--db")
        .arg(dir.join("fan-out.db"))
        .output()
        .expect("riposte campaigns run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .split(" planned in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|secs| secs.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "unexpected answer from campaigns run: {stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
}

/// Kills the child when dropped, so a failed run leaves no server behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn spawn(bin: &Path, name: &str, args: &[&str], envs: &[(&str, &str)]) -> Running {
    let path = bin.join(name);
    let child = Command::new(&path)
        .args(args)
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {}: {e} (run bench/load.sh to build it)",
                path.display()
            )
        });
    Running(child)
}

/// Polls `url` until it answers 200; how long that took, or `None` at the deadline.
async fn wait_ready(http: &reqwest::Client, url: &str, deadline: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < deadline {
        if let Ok(resp) = http.get(url).send().await
            && resp.status().is_success()
        {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    None
}

async fn stats(http: &reqwest::Client, standin: &str) -> Value {
    let resp = http.get(format!("{standin}/stats")).send().await;
    match resp {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

/// Peak resident set of a process, from `/proc/PID/status` (`VmHWM`), in MB.
fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A rules folder: `n` generated rules, then the one rule the load messages match (last, so
/// every other message rule is evaluated first); from generation 1 on, one rule is edited.
fn write_rules(dir: &Path, n: usize, generation: u32) {
    std::fs::create_dir_all(dir).expect("rules dir");
    let mut yaml = format!("# generation {generation}\n");
    let rules = generate::generate(n);
    // Each generation edits one keyword rule (rule 4k + 1), as an operator saving a change.
    let edited = 4 * (generation as usize % (n / 4).max(1)) + 1;
    let word = format!("[word{edited}, ");
    if generation > 0 && rules.contains(&word) {
        yaml.push_str(&rules.replacen(&word, &format!("{word}edit{generation}, "), 1));
    } else {
        yaml.push_str(&rules);
    }
    yaml.push_str(
        "  - name: parcel-status\n    when:\n      text: '(?i)\\bparcel\\s+#?(?P<parcel>\\d+)'\n    then:\n      - reply: \"Parcel {{ match.parcel }}: {{ text }}\"\n",
    );
    // Written aside and renamed, as editors do, so a reload never reads half a file.
    let tmp = dir.join(".rules.yaml.tmp");
    std::fs::write(&tmp, yaml).expect("write rules");
    std::fs::rename(&tmp, dir.join("rules.yaml")).expect("rename rules");
}

async fn measure(options: &Options, scenario: Scenario, dir: &Path, run: usize) -> Figures {
    let system = scenario.system;
    std::fs::create_dir_all(dir).expect("scenario dir");
    let http = reqwest::Client::new();
    let standin_addr = format!("127.0.0.1:{}", free_port());
    let standin_url = format!("http://{standin_addr}");
    let _standin = spawn(&options.bin, "standin", &[&standin_addr], &[]);
    wait_ready(
        &http,
        &format!("{standin_url}/stats"),
        Duration::from_secs(10),
    )
    .await
    .expect("stand-in did not start");
    let addr = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{addr}");
    let rules_dir = dir.join("rules");
    let mut figures = Figures::default();
    let mut bases: Vec<String> = Vec::new();
    let servers: Vec<Running> = match system {
        System::Naive => {
            let server = spawn(&options.bin, "naive-bot", &[&addr, &standin_url], &[]);
            // The bot has no health route; any answer from the webhook route means it listens.
            let started = Instant::now();
            while http
                .post(format!("{base}/webhook"))
                .body("{}")
                .send()
                .await
                .is_err()
            {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "naive bot did not start"
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            vec![server]
        }
        System::Shared { rules, instances } => {
            write_rules(&rules_dir, rules, 0);
            let db = database(options, &format!("load_{}_{run}", std::process::id())).await;
            let rules_arg = rules_dir.to_string_lossy().into_owned();
            let mut servers = Vec::with_capacity(instances);
            for n in 0..instances {
                let addr = if n == 0 {
                    addr.clone()
                } else {
                    format!("127.0.0.1:{}", free_port())
                };
                let instance = format!("load-{n}");
                servers.push(serve_riposte(
                    options,
                    &[&addr, &rules_arg, &db, &standin_url],
                    &["--instance", &instance],
                ));
                bases.push(format!("http://{addr}"));
            }
            for base in &bases {
                let ready = wait_ready(&http, &format!("{base}/readyz"), Duration::from_secs(60))
                    .await
                    .expect("Riposte did not become ready");
                figures.ready_ms = figures.ready_ms.max(ready.as_secs_f64() * 1000.0);
            }
            servers
        }
        System::Riposte { rules, .. } => {
            write_rules(&rules_dir, rules, 0);
            let db = dir.join("riposte.db");
            let rules_arg = rules_dir.to_string_lossy().into_owned();
            let db_arg = db.to_string_lossy().into_owned();
            let server = serve_riposte(options, &[&addr, &rules_arg, &db_arg, &standin_url], &[]);
            let ready = wait_ready(&http, &format!("{base}/readyz"), Duration::from_secs(60))
                .await
                .expect("Riposte did not become ready");
            figures.ready_ms = ready.as_secs_f64() * 1000.0;
            vec![server]
        }
    };
    if bases.is_empty() {
        bases.push(base.clone());
    }
    let pids: Vec<u32> = servers.iter().map(|s| s.0.id()).collect();
    let cpu_before = (cpu_ticks(&pids), cpu_ticks(&postgres_pids()));
    let reloads = match system {
        System::Riposte {
            rules,
            reload_every: Some(every),
        } => {
            let dir = rules_dir.clone();
            Some(tokio::spawn(async move {
                for generation in 1.. {
                    tokio::time::sleep(every).await;
                    write_rules(&dir, rules, generation);
                }
            }))
        }
        _ => None,
    };
    // One wrk per instance, the connections shared among them.
    let share = (options.connections / bases.len() as u32).max(1);
    let threads = (options.threads / bases.len() as u32).max(1);
    let runs = bases.iter().enumerate().map(|(n, base)| {
        tokio::process::Command::new("wrk")
            .args([
                "-t",
                &threads.to_string(),
                "-c",
                &share.to_string(),
                "-d",
                &format!("{}s", options.duration),
                "--latency",
                "-s",
                "bench/load.lua",
                &format!("{base}/webhook"),
            ])
            // Message ids stay unique across the wrk processes of one run.
            .env("LOAD_RUN", format!("r{run}i{n}"))
            .env(
                "LOAD_DELAY_MS",
                pause_ms(scenario.pace, options.connections),
            )
            .output()
    });
    let outputs = futures_all(runs).await;
    if let Some(task) = &reloads {
        task.abort();
    }
    let reports: Vec<WrkReport> = outputs
        .iter()
        .map(|o| {
            parse_wrk(&String::from_utf8_lossy(
                &o.as_ref()
                    .expect("wrk runs (bench/load.sh installs it)")
                    .stdout,
            ))
        })
        .collect();
    let wrk = WrkReport {
        requests: reports.iter().map(|r| r.requests).sum(),
        ok: reports.iter().map(|r| r.ok).sum(),
        errors: reports.iter().map(|r| r.errors).sum(),
        seconds: reports.iter().map(|r| r.seconds).fold(0.0, f64::max),
        p50_ms: reports.iter().map(|r| r.p50_ms).sum::<f64>() / reports.len().max(1) as f64,
        p99_ms: reports.iter().map(|r| r.p99_ms).fold(0.0, f64::max),
    };
    figures.events_per_s = wrk.requests as f64 / wrk.seconds.max(f64::EPSILON);
    figures.p50_ms = wrk.p50_ms;
    figures.p99_ms = wrk.p99_ms;
    figures.expected = wrk.ok as f64;
    // Replies still queued when wrk stops are delivered after it; wait until the count holds.
    let started = Instant::now();
    let mut last = Value::Null;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = stats(&http, &standin_url).await;
        let distinct = now["distinct"].as_f64().unwrap_or(0.0);
        if (distinct >= figures.expected && now == last)
            || started.elapsed() > Duration::from_secs(120)
        {
            last = now;
            break;
        }
        last = now;
    }
    figures.received = last["distinct"].as_f64().unwrap_or(0.0);
    figures.duplicates = last["duplicates"].as_f64().unwrap_or(0.0);
    figures.e2e_p99_ms = last["e2e_p99_us"].as_f64().unwrap_or(0.0) / 1000.0;
    figures.rss_mb = pids.iter().map(|&p| peak_rss_mb(p)).fold(0.0, f64::max);
    if matches!(system, System::Shared { .. }) && figures.received > 0.0 {
        // Linux counts CPU time in ticks of 10 ms.
        let per_event =
            |before: u64, after: u64| (after - before) as f64 * 10_000.0 / figures.received;
        figures.cpu_riposte_us = per_event(cpu_before.0, cpu_ticks(&pids));
        figures.cpu_postgres_us = per_event(cpu_before.1, cpu_ticks(&postgres_pids()));
    }
    if matches!(
        system,
        System::Riposte {
            reload_every: Some(_),
            ..
        }
    ) {
        let version = http.get(format!("{base}/metrics")).send().await;
        let text = match version {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        figures.reloads = metric(&text, "riposte_rules_reloads_total");
    }
    if wrk.errors > 0 || wrk.ok < wrk.requests {
        eprintln!(
            "  wrk: {} requests, {} answered 2xx, {} socket errors",
            wrk.requests, wrk.ok, wrk.errors
        );
    }
    figures
}

/// `riposte serve` on `[listen, rules, db, whapi]`, tuned for load, with `extra` flags.
fn serve_riposte(options: &Options, at: &[&str; 4], extra: &[&str]) -> Running {
    let [listen, rules, db, whapi] = *at;
    let mut args = vec![
        "serve",
        "--listen",
        listen,
        "--rules",
        rules,
        "--db",
        db,
        "--whapi-url",
        whapi,
        "--whapi-rate",
        "1000000/s",
        "--concurrency",
        "64",
        // One source sends the whole load: the per-source limit would cap it.
        "--rate-limit",
        "off",
    ];
    args.extend_from_slice(extra);
    spawn(
        &options.bin,
        "riposte",
        &args,
        &[("WHAPI_TOKEN", "load-token"), ("RUST_LOG", "warn")],
    )
}

/// Runs the futures at once and waits for all of them.
async fn futures_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.expect("task runs"));
    }
    out
}

/// A fresh database on the `--postgres` server; its address.
async fn database(options: &Options, name: &str) -> String {
    let server = options.postgres.as_deref().expect("--postgres is given");
    let (client, connection) =
        tokio_postgres::connect(&format!("{server}/postgres"), tokio_postgres::NoTls)
            .await
            .expect("the PostgreSQL server answers");
    tokio::spawn(connection);
    // One statement each: neither may run inside a transaction block.
    for statement in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        client
            .batch_execute(&statement)
            .await
            .expect("a database can be made");
    }
    format!("{server}/{name}")
}

/// User and system CPU time of these processes so far, in clock ticks.
fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| {
            // Fields after the command name (which may hold spaces) in parentheses.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: u64 = fields.get(11)?.parse().ok()?;
            let stime: u64 = fields.get(12)?.parse().ok()?;
            Some(utime + stime)
        })
        .sum()
}

/// The processes of the PostgreSQL server (every `postgres` process on the machine).
fn postgres_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .collect()
}

/// The pause each connection makes between an answer and its next request for about `pace`
/// requests a second in all; wrk counts it in whole milliseconds.
fn pause_ms(pace: Option<u32>, connections: u32) -> String {
    pace.map_or(0, |pace| (connections * 1000 / pace.max(1)).max(1))
        .to_string()
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[derive(Default)]
struct WrkReport {
    requests: u64,
    ok: u64,
    errors: u64,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Reads wrk's text report: `N requests in 10.00s`, the latency distribution, error counts.
fn parse_wrk(report: &str) -> WrkReport {
    let mut out = WrkReport::default();
    let mut non_2xx = 0;
    for line in report.lines().map(str::trim) {
        if let Some((n, rest)) = line.split_once(" requests in ") {
            out.requests = n.trim().parse().unwrap_or(0);
            out.seconds = duration_ms(rest.split(',').next().unwrap_or("")) / 1000.0;
        } else if let Some(v) = line.strip_prefix("50%") {
            out.p50_ms = duration_ms(v.trim());
        } else if let Some(v) = line.strip_prefix("99%") {
            out.p99_ms = duration_ms(v.trim());
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            non_2xx = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            out.errors = v
                .split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum();
        }
    }
    out.ok = out.requests.saturating_sub(non_2xx);
    if out.requests == 0 {
        eprintln!("wrk printed no report:\n{report}");
    }
    out
}

/// wrk's `1.23ms`, `850.00us`, `1.02s`, `10.00s` in milliseconds.
fn duration_ms(text: &str) -> f64 {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (value, unit) = text.split_at(split);
    let value: f64 = value.parse().unwrap_or(0.0);
    match unit {
        "us" => value / 1000.0,
        "ms" => value,
        "s" => value * 1000.0,
        "m" => value * 60_000.0,
        _ => value,
    }
}
