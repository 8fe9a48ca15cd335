//! A private Postgres server for tests: `initdb` into a temp dir, `pg_ctl` on a free
//! loopback port with its unix socket in that dir, trust authentication for the
//! `postgres` superuser. When the tests run as root, the server's commands run as the
//! `postgres` system user (Postgres refuses root), with the temp dir handed to that user.
//!
//! Start one with [`PgServer::start`] (stopped on drop), or [`PgServer::start_with_tls`]
//! for one that also offers TLS with a certificate for `localhost` from a test CA, or share one per test binary with
//! [`PgServer::shared`] and give each test its own database ([`PgServer::create_database`]).
//! Without Postgres's binaries the tests fail, saying how to install them.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Where Debian and Ubuntu install each Postgres version's binaries.
const DISTRIBUTION_BINARIES: &str = "/usr/lib/postgresql";

/// The server shared by a test binary.
static SHARED: OnceLock<PgServer> = OnceLock::new();

/// Numbers the databases a test binary creates.
static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// A Postgres server of its own, listening on 127.0.0.1.
pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres_user: bool,
    tls: bool,
}

impl PgServer {
    /// Creates and starts a server in a fresh temp dir; panics (with how to install
    /// Postgres, or the server's log) when it cannot.
    pub fn start() -> PgServer {
        PgServer::create(false)
    }

    /// Like [`PgServer::start`], and the server also accepts TLS, with a certificate for
    /// `localhost` signed by the CA in [`PgServer::ca_file`].
    pub fn start_with_tls() -> PgServer {
        PgServer::create(true)
    }

    /// The test CA's certificate (PEM), for a server started with TLS.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// Creates and starts a server, with TLS or not.
    fn create(tls: bool) -> PgServer {
        let bin = binaries();
        let dir = tempfile::Builder::new()
            .prefix("pg-test-")
            .tempdir()
            .expect("create a temp dir for Postgres");
        // SAFETY: geteuid has no preconditions and cannot fail.
        let as_postgres_user = unsafe { libc::geteuid() } == 0;
        if as_postgres_user {
            run(Command::new("chown").arg("postgres:").arg(dir.path()));
        }
        let server = PgServer {
            dir,
            bin,
            port: free_port(),
            as_postgres_user,
            tls,
        };
        server.pg(
            "initdb",
            &[
                "-D",
                &server.data().display().to_string(),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ],
        );
        if tls {
            server.make_certificates();
        }
        server.start_again();
        server
    }

    /// The server shared by every test of this test binary, started on first use and
    /// stopped when the binary exits.
    pub fn shared() -> &'static PgServer {
        SHARED.get_or_init(|| {
            let server = PgServer::start();
            // SAFETY: registering a plain function with no arguments.
            unsafe { libc::atexit(stop_shared) };
            server
        })
    }

    /// The URL of database `db`, as the `postgres` superuser (no password).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates a new, empty database and returns its URL.
    pub fn create_database(&self) -> String {
        let name = format!(
            "test_{}_{}",
            std::process::id(),
            DATABASES.fetch_add(1, Ordering::SeqCst)
        );
        self.pg(
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                &name,
            ],
        );
        self.url(&name)
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`), as a crash or an outage would.
    pub fn stop(&self) {
        self.pg(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }

    /// Starts the (stopped) server again, on the same port with the same databases.
    pub fn start_again(&self) {
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        if self.tls {
            options.push_str(" -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key");
        }
        let started = self.try_pg(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-l",
                &self.log().display().to_string(),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        if !started.status.success() {
            panic!(
                "could not start the test Postgres server: {}\n--- server log ---\n{}",
                String::from_utf8_lossy(&started.stderr),
                std::fs::read_to_string(self.log()).unwrap_or_default()
            );
        }
    }

    /// Makes a test CA and a server certificate for `localhost` signed by it (with the
    /// `openssl` command), the server's key readable only by the server.
    fn make_certificates(&self) {
        let dir = self.dir.path();
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n",
        )
        .expect("write the certificate extensions");
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let openssl = |args: &[&str]| {
            run(Command::new("openssl").args(args).current_dir(dir));
        };
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.crt",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=vultr-mcp test CA",
                ],
            ]
            .concat(),
        );
        openssl(
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=localhost",
                ],
            ]
            .concat(),
        );
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ]);
        for file in ["server.crt", "server.key"] {
            let path = self.data_file(file);
            std::fs::rename(dir.join(file), &path).expect("move the server's certificate");
            if self.as_postgres_user {
                run(Command::new("chown").arg("postgres:").arg(&path));
            }
        }
        run(Command::new("chmod")
            .arg("600")
            .arg(self.data_file("server.key")));
    }

    /// A file in the data directory.
    fn data_file(&self, name: &str) -> PathBuf {
        self.data().join(name)
    }

    /// The data directory.
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server's log file.
    fn log(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// Runs Postgres program `program` with `args`; panics with its output when it fails.
    fn pg(&self, program: &str, args: &[&str]) {
        let output = self.try_pg(program, args);
        if !output.status.success() {
            panic!(
                "`{program} {}` failed: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }

    /// Runs Postgres program `program` with `args` (as `postgres` when we are root).
    fn try_pg(&self, program: &str, args: &[&str]) -> Output {
        self.command(program, args)
            .output()
            .expect("run a Postgres program")
    }

    /// The command running Postgres program `program` with `args`, as `postgres` when we
    /// are root.
    fn command(&self, program: &str, args: &[&str]) -> Command {
        let program = self.bin.join(program);
        let mut command = if self.as_postgres_user {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        command.args(args).current_dir(self.dir.path());
        command
    }

    /// Stops the server immediately, whatever state it is in; never panics.
    fn stop_quietly(&self) {
        let data = self.data().display().to_string();
        let _ = self
            .command("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
    }
}

impl Drop for PgServer {
    /// Stops the server (immediately); the temp dir goes with it.
    fn drop(&mut self) {
        self.stop_quietly();
    }
}

/// Stops the shared server and removes its files when the test binary exits.
extern "C" fn stop_shared() {
    if let Some(server) = SHARED.get() {
        server.stop_quietly();
        let _ = std::fs::remove_dir_all(server.dir.path());
    }
}

/// The directory holding `initdb` and `pg_ctl`: the newest version under
/// /usr/lib/postgresql, else the one on PATH. Panics with how to install them.
fn binaries() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir(DISTRIBUTION_BINARIES)
        .map(|dir| {
            dir.filter_map(|entry| Some(entry.ok()?.path().join("bin")))
                .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
                .collect()
        })
        .unwrap_or_default();
    versions.sort_by_key(|bin| {
        bin.parent()
            .and_then(Path::file_name)
            .and_then(|v| v.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    if let Some(newest) = versions.pop() {
        return newest;
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
    });
    on_path.unwrap_or_else(|| {
        panic!(
            "the Postgres tests need a Postgres server's binaries (initdb, pg_ctl), found neither in {DISTRIBUTION_BINARIES}/*/bin nor on PATH. Install them: `apt-get install -y postgresql` on Debian/Ubuntu (`.ci/run` does this), or put a Postgres bin directory on PATH."
        )
    })
}

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("find a free loopback port")
        .port()
}

/// Runs `command`; panics with its output when it fails.
fn run(command: &mut Command) {
    let output = command.output().expect("run a command");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
