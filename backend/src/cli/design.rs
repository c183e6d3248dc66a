//! `configure`, `check` and `plan`: designs from the command line, and the plan that deploys
//! them.

use super::files::{dir_problem, print_diagnostics, read_config, summary, write_config};
use anyhow::Result;
use m1studio_shared::cmdline::{self, Invocation};
use m1studio_shared::plan::Profile;
use m1studio_shared::{configure, has_errors, link};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where the designer runs, for share links, unless `M1STUDIO_URL` says otherwise.
const DEFAULT_DESIGNER_URL: &str = "http://127.0.0.1:8080/";

pub(crate) fn configure_command(args: &[String]) -> Result<ExitCode> {
    let mut read_file = |path: &str| std::fs::read_to_string(path).map_err(|e| e.to_string());
    let (invocation, mut diagnostics) = cmdline::parse_args(args, &mut read_file);
    if invocation.help {
        print!("{}", cmdline::configure_help());
        return Ok(ExitCode::SUCCESS);
    }
    // The cluster directory's vault: kept from its config.yml when re-configured, else new.
    let mut invocation = invocation;
    if invocation.draft.vault_name.is_none() {
        let existing = invocation.dir.as_deref().and_then(|dir| {
            let text = std::fs::read_to_string(Path::new(dir).join("config.yml")).ok()?;
            m1studio_shared::config::vault_name_of(&text)
        });
        invocation.draft.vault_name =
            Some(existing.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()));
    }
    let (configured, validation) = configure(&invocation.draft);
    let dir_missing = invocation.dir.is_none();
    diagnostics.extend(
        validation
            .into_iter()
            .filter(|d| !(dir_missing && d.path == "cluster_name")),
    );
    let dir_problem = invocation
        .dir
        .as_deref()
        .and_then(|dir| dir_problem(Path::new(dir), invocation.force));
    let Some(configured) =
        configured.filter(|_| !has_errors(&diagnostics) && dir_problem.is_none())
    else {
        print_diagnostics(&diagnostics);
        if let Some(problem) = dir_problem {
            eprintln!("error[cluster-dir] cluster_dir: {problem}");
        }
        eprintln!("nothing was written ({})", summary(&diagnostics));
        return Ok(ExitCode::FAILURE);
    };
    print_diagnostics(&diagnostics);
    let Invocation { dir, draft, .. } = invocation;
    let dir = PathBuf::from(dir.unwrap_or_default());
    write_config(&dir, &configured.config_yml)?;
    let base = std::env::var("M1STUDIO_URL").unwrap_or_else(|_| DEFAULT_DESIGNER_URL.to_string());
    println!(
        "wrote {} ({} instances)",
        dir.join("config.yml").display(),
        configured.topology.instances.len()
    );
    for instance in &configured.topology.instances {
        let roles: Vec<&str> = instance.roles.iter().map(|r| r.as_str()).collect();
        println!(
            "  {:>2}  {:<12} {:<8} {}",
            instance.node,
            instance.name,
            instance.location,
            roles.join(", ")
        );
    }
    println!("share: {}", link::url(&base, &draft));
    Ok(ExitCode::SUCCESS)
}

/// Prints the plan that `m1studio deploy` would run for the design of `path`, with `profile`
/// (by default the platform's, as deploy's).
pub(crate) fn plan_command(path: &Path, profile: Option<Profile>, json: bool) -> Result<ExitCode> {
    let (file, draft, diagnostics) = read_config(path)?;
    let configured = draft
        .filter(|_| !has_errors(&diagnostics))
        .and_then(|d| configure(&d).0);
    let Some(configured) = configured else {
        print_diagnostics(&diagnostics);
        eprintln!(
            "{} has problems ({}): run m1studio check for details",
            file.display(),
            summary(&diagnostics)
        );
        return Ok(ExitCode::FAILURE);
    };
    let profile = profile.unwrap_or(Profile::for_platform(
        configured.design.platform().platform(),
    ));
    let options = crate::runner::plan_options(profile);
    match m1studio_shared::plan::plan(&configured.design, &configured.topology, options) {
        Ok(plan) if json => println!("{}", serde_json::to_string_pretty(&plan)?),
        Ok(plan) => {
            for node in &plan.nodes {
                for f in &node.files {
                    println!(
                        "# ==> {}:{} ({}, {:o})\n{}",
                        node.node, f.path, f.owner, f.mode, f.content
                    );
                }
            }
            print!("{}", plan.describe());
        }
        Err(problems) => {
            print_diagnostics(&problems);
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn check_command(path: &Path) -> Result<ExitCode> {
    let (file, draft, diagnostics) = read_config(path)?;
    print_diagnostics(&diagnostics);
    match draft {
        Some(draft) if !has_errors(&diagnostics) => {
            println!(
                "{} is a valid M1 configuration ({})",
                file.display(),
                summary(&diagnostics)
            );
            // No option of configure moves nodes: the line gives the M1 layout.
            let placed = if draft.placement.is_some() {
                ", but with every node in the M1 layout's location"
            } else {
                ""
            };
            println!(
                "same as{placed}: {}",
                cmdline::command_line(cmdline::Program::M1studio, &draft.cluster_name, &draft)
            );
            let base =
                std::env::var("M1STUDIO_URL").unwrap_or_else(|_| DEFAULT_DESIGNER_URL.to_string());
            println!("share: {}", link::url(&base, &draft));
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            eprintln!(
                "{} has problems ({})",
                file.display(),
                summary(&diagnostics)
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
