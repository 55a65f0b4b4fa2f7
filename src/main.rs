//! The `voucherd` binary: `serve` (default), `check-config`, `export FILE`, `import FILE`,
//! `admin reset-password EMAIL`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use voucherd::app::Application;
use voucherd::config::{Overrides, Settings};
use voucherd::store::{Store, backup};

/// mimalloc: the store's write path allocates a small node per key, and glibc's allocator was
/// 40 % of ingest time (measured with `cargo bench --bench ingest`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "voucherd", version, about = "Self-hosted voucher server")]
struct Cli {
    /// Configuration file (default: ./config.toml when present).
    #[arg(long, global = true, env = "VOUCHERD_CONFIG")]
    config: Option<PathBuf>,
    /// Listen address, overriding `http.bind`.
    #[arg(long, global = true)]
    bind: Option<String>,
    /// Store directory, overriding `store.path`.
    #[arg(long, global = true)]
    store_path: Option<PathBuf>,
    /// Log as JSON lines.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Validate the configuration and print the effective settings, secrets masked.
    CheckConfig,
    /// Write a backup of the whole store to FILE (stop the server first: sled locks the store).
    Export { file: PathBuf },
    /// Restore a backup from FILE into an empty store.
    Import { file: PathBuf },
    /// Administration with the server stopped.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Give the user EMAIL a new password (VOUCHERD_ADMIN_PASSWORD when set, else a random one,
    /// printed) and sign them out everywhere. Run it with the server stopped.
    ResetPassword { email: String },
}

#[actix_web::main]
async fn main() -> ExitCode {
    // The store and the mail files hold password hashes, secrets and personal data.
    voucherd::store::private_files_from_now_on();
    // Transparent huge pages make each 4 KiB the allocator touches in its arenas 2 MiB resident:
    // an empty server measured 116 MiB resident with them and 60 MiB without.
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    let cli = Cli::parse();
    voucherd::telemetry::init_logs(cli.log_json);
    let overrides = Overrides {
        bind: cli.bind.clone(),
        store_path: cli.store_path.clone(),
    };
    let settings = match Settings::load(cli.config.as_deref(), &overrides) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("voucherd: {e}");
            return ExitCode::from(2);
        }
    };
    match run(cli.command.unwrap_or(Command::Serve), settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("voucherd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The store, for a command that needs it to itself: a store a running server holds is named,
/// with what to do, in one line.
fn open_alone(settings: &Settings) -> anyhow::Result<Store> {
    Store::open(&settings.store).map_err(|e| {
        let locked = e.to_string().to_ascii_lowercase().contains("lock");
        if locked {
            anyhow::anyhow!(
                "the store at {} is in use by a running voucherd: stop it (SIGTERM), then run this again",
                settings.store.path.display()
            )
        } else {
            anyhow::anyhow!("cannot open the store at {}: {e}", settings.store.path.display())
        }
    })
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            Application::build(settings)
                .await?
                .run_until_stopped()
                .await
        }
        Command::CheckConfig => {
            print!("{}", settings.to_masked_toml());
            Ok(())
        }
        Command::Export { file } => {
            if !settings.store.path.exists() {
                anyhow::bail!("no store at {}", settings.store.path.display());
            }
            let store = open_alone(&settings)?;
            let out = backup::create_export_file(&file)
                .with_context(|| format!("cannot write {}", file.display()))?;
            let mut out = std::io::BufWriter::new(out);
            let n = backup::export(&store, &mut out)?;
            eprintln!("exported {n} records to {}", file.display());
            Ok(())
        }
        Command::Admin {
            command: AdminCommand::ResetPassword { email },
        } => {
            let store = open_alone(&settings)?;
            let given = settings.auth.bootstrap_admin_password.clone();
            let from_env = given.is_some();
            let password = voucherd::app::reset_password(&store, &email, given).await?;
            drop(store);
            if from_env {
                println!("the password of {email} is now the one in VOUCHERD_ADMIN_PASSWORD");
            } else {
                println!("new password for {email}: {password}");
            }
            Ok(())
        }
        Command::Import { file } => {
            let input = std::io::BufReader::new(
                std::fs::File::open(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?,
            );
            let n = backup::import(&settings.store, input)?;
            eprintln!(
                "imported {n} records into {}",
                settings.store.path.display()
            );
            Ok(())
        }
    }
}
