use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::Context;
use reimport_core::{ImportReport, ItemQuery, Kind, Metric, ProfileLimits, StoredItem, Tenant};

use crate::cli::{Cli, Command, KindsFormat, OutputFormat, ProfileArgs};
use crate::pipeline::{profile_beside, Failure, PairImport};
use crate::{EXIT_FAILURE, EXIT_INVALID_INPUT, EXIT_OK, EXIT_USAGE};

/// An error the user caused with the command line itself (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn exit_code_for(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<UsageError>().is_some() {
        EXIT_USAGE
    } else if e
        .downcast_ref::<reimport_core::Error>()
        .is_some_and(|e| e.is_invalid_input())
    {
        EXIT_INVALID_INPUT
    } else {
        EXIT_FAILURE
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Import(args) => {
            let tenant = tenant(&args.tenant)?;
            let store = if args.dry_run {
                None
            } else {
                Some(args.store.store.open().await?)
            };
            import_or_validate(&args.input, &tenant, store.as_deref(), args.report_json.as_deref()).await
        }
        Command::Validate(args) => {
            import_or_validate(&args.input, &tenant("default")?, None, args.report_json.as_deref()).await
        }
        Command::Query(args) => {
            let kind = Kind::parse(&args.kind).ok_or_else(|| {
                UsageError(format!(
                    "unknown kind {:?}: valid kinds are {}",
                    args.kind,
                    Kind::ALL.map(|k| k.as_str()).join(", ")
                ))
            })?;
            if let (Some(from), Some(to)) = (args.from, args.to) {
                if from > to {
                    return Err(UsageError(format!("--from {from} is after --to {to}")).into());
                }
            }
            let store = args.store.store.open().await?;
            let query = ItemQuery {
                tenant: tenant(&args.tenant)?,
                kind,
                key: args.key,
                from: args.from,
                to: args.to,
            };
            let items = store.query(&query).await.context("querying the store")?;
            print_items(kind, &items, args.format)?;
            Ok(EXIT_OK)
        }
        Command::Kinds(args) => {
            match args.format {
                KindsFormat::Json => print_out(&serde_json::to_string_pretty(&reimport_core::schema::catalog_json())?)?,
                KindsFormat::Text => print_out(&kinds_text())?,
            }
            Ok(EXIT_OK)
        }
        Command::Schema => {
            print_out(&serde_json::to_string_pretty(
                &reimport_core::schema::profile_json_schema(),
            )?)?;
            Ok(EXIT_OK)
        }
        Command::Setup(args) => {
            args.store.store.setup().await?;
            eprintln!("store {} is ready", args.store.store);
            Ok(EXIT_OK)
        }
        Command::Watch(args) => crate::watch::run(args).await,
    }
}

fn tenant(name: &str) -> anyhow::Result<Tenant> {
    Tenant::new(name).map_err(|e| UsageError(format!("--tenant: {e}")).into())
}

async fn import_or_validate(
    input: &ProfileArgs,
    tenant: &Tenant,
    store: Option<&dyn reimport_core::Store>,
    report_json: Option<&Path>,
) -> anyhow::Result<u8> {
    let profile = input.profile.clone().unwrap_or_else(|| profile_beside(&input.file));
    let pair = PairImport {
        csv: &input.file,
        profile: &profile,
        tenant,
        limits: ProfileLimits {
            max_period_days: input.max_period_days,
        },
        store,
    };
    let show_progress = std::io::stderr().is_terminal();
    let mut last_shown = std::time::Instant::now();
    let mut progress = |done: u64, total: u64| {
        if show_progress && (last_shown.elapsed().as_millis() >= 200 || done == total) {
            last_shown = std::time::Instant::now();
            eprint!("\rwriting daily items: {done} / {total}");
            if done == total {
                eprintln!();
            }
        }
    };
    let (report, failure) = pair.run(&mut progress).await;
    if let Some(path) = report_json {
        write_report(path, &report)?;
    }
    match failure {
        None => {
            print_out(&report)?;
            Ok(EXIT_OK)
        }
        Some(Failure::Invalid) => {
            eprintln!("{report}");
            Ok(EXIT_INVALID_INPUT)
        }
        Some(Failure::Failed) => {
            eprintln!("{report}");
            Ok(EXIT_FAILURE)
        }
    }
}

pub fn write_report(path: &Path, report: &ImportReport) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(report)?;
    std::fs::write(path, json).with_context(|| format!("writing the report {}", path.display()))
}

/// Prints `text` and a line break to standard output. A reader that stopped early
/// (`reimport kinds | head`) is not an error; any other failure to write is.
fn print_out(text: &dyn std::fmt::Display) -> anyhow::Result<()> {
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to standard output"),
    }
}

fn kinds_text() -> String {
    use std::fmt::Write as _;
    let mut text = String::new();
    for kind in Kind::ALL {
        let _ = writeln!(text, "{kind}");
        let _ = writeln!(text, "  key: {}", kind.key_dimension());
        for d in kind.optional_dimensions() {
            let _ = writeln!(text, "  optional dimension: {d}");
        }
        let _ = writeln!(text, "  metrics:");
        for m in kind.metrics() {
            let _ = writeln!(
                text,
                "    {:<20} {:<8} {}",
                m.as_str(),
                m.unit().as_str(),
                m.description()
            );
        }
    }
    text.pop();
    text
}

fn print_items(kind: Kind, items: &[StoredItem], format: OutputFormat) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match format {
        OutputFormat::Json => {
            serde_json::to_writer(&mut out, items)?;
            writeln!(out)?;
        }
        OutputFormat::Csv | OutputFormat::Table => {
            let dims = kind.dimensions();
            let metrics: Vec<Metric> = kind.metrics().to_vec();
            let mut header: Vec<String> = vec!["tenant".into(), "date".into()];
            header.extend(dims.iter().map(|d| d.to_string()));
            header.extend(metrics.iter().map(|m| m.to_string()));
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|it| {
                    let mut row = vec![it.tenant.clone(), it.day.to_string()];
                    row.extend(dims.iter().map(|d| it.dimensions.get(d).cloned().unwrap_or_default()));
                    row.extend(
                        metrics
                            .iter()
                            .map(|m| it.metrics.get(m).map(|q| q.to_string()).unwrap_or_default()),
                    );
                    row
                })
                .collect();
            if format == OutputFormat::Csv {
                let mut w = csv::Writer::from_writer(&mut out);
                w.write_record(&header)?;
                for row in &rows {
                    w.write_record(row)?;
                }
                w.flush()?;
            } else {
                let widths: Vec<usize> = (0..header.len())
                    .map(|i| {
                        rows.iter()
                            .map(|r| r[i].chars().count())
                            .chain([header[i].len()])
                            .max()
                            .unwrap_or(0)
                    })
                    .collect();
                let line = |cells: &[String]| {
                    cells
                        .iter()
                        .zip(&widths)
                        .map(|(c, w)| format!("{c:<w$}"))
                        .collect::<Vec<_>>()
                        .join("  ")
                };
                writeln!(out, "{}", line(&header).trim_end())?;
                for row in &rows {
                    writeln!(out, "{}", line(row).trim_end())?;
                }
                writeln!(out, "({} item{})", rows.len(), if rows.len() == 1 { "" } else { "s" })?;
            }
        }
    }
    out.flush()?;
    Ok(())
}
