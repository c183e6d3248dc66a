//! `m1studio image build`: the node images a workshop will use, built (or found) before the room
//! fills, each with its stages and elapsed time, so that no attendee's first deployment waits
//! for one.

use anyhow::{Context as _, Result};
use m1studio_shared::plan::node_image;
use m1studio_shared::{Draft, configure};
use std::process::ExitCode;
use std::time::Instant;

/// Builds (or finds) the node image of each of `versions` with each of `managers`.
pub(crate) fn build_command(versions: &[String], managers: &[String]) -> Result<ExitCode> {
    let pgdg = std::env::var("M1STUDIO_PGDG_MIRROR").ok();
    let mut images = Vec::new();
    let mut problems = Vec::new();
    for version in versions {
        for manager in managers {
            let draft = Draft {
                postgres_version: Some(version.clone()),
                failover_manager: Some(manager.clone()),
                ..Draft::starter()
            };
            let (configured, diagnostics) = configure(&draft);
            let Some(configured) = configured else {
                problems.extend(diagnostics.into_iter().filter(|d| d.is_error()));
                continue;
            };
            match node_image(&configured.design, pgdg.as_deref()) {
                Ok(image)
                    if !images
                        .iter()
                        .any(|i: &m1studio_shared::plan::NodeImage| i.tag == image.tag) =>
                {
                    images.push(image)
                }
                Ok(_) => {}
                Err(problem) => problems.push(problem),
            }
        }
    }
    if !problems.is_empty() {
        super::files::print_diagnostics(&problems);
        eprintln!("nothing was built");
        return Ok(ExitCode::FAILURE);
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let engine = crate::target::docker::connect().await?;
        for image in &images {
            if crate::target::image::image_exists(&engine, &image.tag).await {
                println!("{}: ready", image.tag);
                continue;
            }
            let started = Instant::now();
            eprintln!("{}: building", image.tag);
            crate::target::image::build_image(&engine, image, &|line| {
                eprintln!("  [{:>5.1} s] {line}", started.elapsed().as_secs_f64());
            })
            .await?;
            println!(
                "{}: built in {:.1} s",
                image.tag,
                started.elapsed().as_secs_f64()
            );
        }
        Ok::<_, anyhow::Error>(ExitCode::SUCCESS)
    })
}
