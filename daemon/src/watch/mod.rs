//! `reimport watch DIR`: placeholder until the watcher lands.

use clap::Args;

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// The drop folder.
    pub dir: std::path::PathBuf,
}

pub async fn run(args: WatchArgs) -> anyhow::Result<u8> {
    anyhow::bail!("watch is not built yet ({})", args.dir.display())
}
