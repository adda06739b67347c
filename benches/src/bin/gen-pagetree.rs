//! `gen-pagetree LINES DIR`: writes DIR/pagetree-LINES.csv and DIR/pagetree-LINES.json.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

use anyhow::Context;
use reimport_benches::{write_pagetree, PAGETREE_PROFILE};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(lines), Some(dir)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: gen-pagetree LINES DIR");
    };
    let lines: u64 = lines
        .parse()
        .with_context(|| format!("LINES {lines:?} is not a number"))?;
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let csv = dir.join(format!("pagetree-{lines}.csv"));
    let mut out = BufWriter::with_capacity(
        1 << 20,
        File::create(&csv).with_context(|| format!("creating {}", csv.display()))?,
    );
    write_pagetree(lines, &mut out).with_context(|| format!("writing {}", csv.display()))?;
    std::io::Write::flush(&mut out)?;
    let profile = dir.join(format!("pagetree-{lines}.json"));
    std::fs::write(&profile, PAGETREE_PROFILE).with_context(|| format!("writing {}", profile.display()))?;
    println!("{}", csv.display());
    Ok(())
}
