//! Man pages from the command-line definitions (clap_mangen): `sharekeepctl.1` and one page
//! per subcommand (`sharekeepctl-restore.1`, `sharekeepctl-policy-apply.1`…), as the Debian
//! package installs them.

use crate::args::Cli;
use crate::Outcome;
use anyhow::{Context, Result};
use clap::CommandFactory;
use std::path::Path;

/// Writes every page into `dir` (created if missing).
pub fn man_pages(dir: &Path) -> Result<Outcome> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cmd = Cli::command();
    cmd.build();
    write_pages(&cmd, dir)?;
    Ok(Outcome::Ok)
}

/// The page of `cmd`, then those of its subcommands, recursively. Once built, a subcommand's
/// display name is its page's (`sharekeepctl-restore`), its bin name what one types
/// (`sharekeepctl restore`).
fn write_pages(cmd: &clap::Command, dir: &Path) -> Result<()> {
    let name = cmd
        .get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_string();
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut out)
        .with_context(|| format!("rendering {name}(1)"))?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))?;
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        write_pages(sub, dir)?;
    }
    Ok(())
}
