//! The node image: built from Debian's archive with debootstrap (and the server packages from
//! the PostgreSQL apt repository for versions Debian lacks), then imported into the engine, with
//! no registry.

use super::docker::Docker;
use anyhow::{Context as _, Result, bail};
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::TryStreamExt as _;
use m1studio_shared::plan::{NodeImage, Pgdg};
use std::time::{Duration, Instant};

/// Builds `image` where the engine lacks it, saying so through `progress`, with the build's
/// latest line at most once a second.
pub async fn ensure(
    docker: &Docker,
    image: &NodeImage,
    progress: super::Progress<'_>,
) -> Result<()> {
    if image_exists(docker, &image.tag).await {
        return Ok(());
    }
    let building = Some(m1studio_shared::api::Signal::ImageBuild);
    progress(
        building,
        &format!("waiting for the node image {}", image.tag),
        None,
    );
    let last = std::sync::Mutex::new(None::<Instant>);
    build_image(docker, image, &|line| {
        let mut last = crate::lock(&last);
        if last.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
            *last = Some(Instant::now());
            progress(building, "building the node image", Some(line));
        }
    })
    .await
}

/// Whether `tag` is already built.
pub async fn image_exists(docker: &Docker, tag: &str) -> bool {
    docker.inspect_image(tag).await.is_ok()
}

/// Builds `image` from Debian's archive with debootstrap and imports it, reporting progress
/// through `progress`, unless the engine has it by the time no other build runs. One build at
/// a time in a process: deployments (or tests) that need the same image wait for it, rather
/// than each building its own. Needs root and debootstrap; reaches only Debian's mirror.
pub async fn build_image(
    docker: &Docker,
    image: &NodeImage,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<()> {
    static BUILDING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one = BUILDING.lock().await;
    if image_exists(docker, &image.tag).await {
        return Ok(());
    }
    if !std::path::Path::new("/usr/sbin/debootstrap").exists() {
        bail!(
            "building the node image needs debootstrap: install it (apt-get install debootstrap) and run again as root"
        );
    }
    let dir = std::env::temp_dir().join(format!(
        "m1studio-image-{}-{}",
        std::process::id(),
        crate::random_hex(4)?
    ));
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(&dir).context("creating a folder for the image")?;
    let cleanup = scopeguard(dir.clone());
    progress(&format!(
        "building {} from Debian {} (a few minutes, once)",
        image.tag, image.suite
    ));
    let mirror = std::env::var("M1STUDIO_DEBIAN_MIRROR")
        .unwrap_or_else(|_| "http://deb.debian.org/debian".into());
    let include = format!("--include={}", image.packages.join(","));
    let mut child = tokio::process::Command::new("/usr/sbin/debootstrap")
        .args(["--variant=minbase", &include, &image.suite])
        .arg(&rootfs)
        .arg(&mirror)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("starting debootstrap")?;
    let stdout = child.stdout.take().context("debootstrap's output")?;
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let mut last = String::new();
    let mut count = 0u32;
    while let Some(line) = lines.next_line().await? {
        count += 1;
        if line.starts_with("I: Retrieving")
            || line.starts_with("I: Unpacking")
            || line.starts_with("I: Configuring")
            || line.starts_with("I: Installing")
        {
            let stage = line
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_string();
            if stage != last || count.is_multiple_of(40) {
                progress(&format!("debootstrap: {}", line.trim_start_matches("I: ")));
                last = stage;
            }
        }
    }
    let status = child.wait().await?;
    if !status.success() {
        let mut err = String::new();
        if let Some(mut stderr) = child.stderr.take() {
            let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut err).await;
        }
        bail!(
            "debootstrap failed ({status}): {}",
            err.lines().rev().take(5).collect::<Vec<_>>().join("; ")
        );
    }
    if let Some(pgdg) = &image.pgdg {
        progress(&format!(
            "installing {} from {} {}",
            pgdg.packages.join(", "),
            pgdg.mirror,
            pgdg.suite
        ));
        install_from_pgdg(&rootfs, pgdg).await?;
    }
    for junk in [
        "var/cache/apt/archives",
        "usr/share/doc",
        "usr/share/man",
        "var/lib/apt/lists",
    ] {
        let path = rootfs.join(junk);
        if path.exists() {
            for entry in std::fs::read_dir(&path)?.flatten() {
                let p = entry.path();
                let _ = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
            }
        }
    }
    prepare_rootfs(&rootfs)?;
    progress("importing the image into Docker");
    let mut tar = tokio::process::Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .args(["-c", "."])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("starting tar")?;
    let stdout = tar.stdout.take().context("tar's output")?;
    let stream = tokio_util::io::ReaderStream::new(stdout);
    let (repo, tag) = image.tag.split_once(':').unwrap_or((&image.tag, "latest"));
    let mut options = CreateImageOptionsBuilder::default()
        .from_src("-")
        .repo(repo)
        .tag(tag)
        .build();
    options.changes = vec![
        r#"CMD ["/usr/bin/supervisord","-n","-c","/etc/supervisor/supervisord.conf"]"#.to_string(),
    ];
    let mut import =
        docker.create_image(Some(options), Some(bollard::body_try_stream(stream)), None);
    while let Some(info) = import.try_next().await.context("importing the image")? {
        if let Some(error) = info.error_detail.and_then(|e| e.message) {
            bail!("importing the image failed: {error}");
        }
    }
    tar.wait().await?;
    drop(cleanup);
    progress(&format!("built {}", image.tag));
    Ok(())
}

/// Installs the Postgres server packages from the PostgreSQL project's apt repository into
/// `rootfs`, with the repository's signing key from Debian's postgresql-common. Services are not
/// started in the chroot, and no default cluster is created: the plan makes its own.
async fn install_from_pgdg(rootfs: &std::path::Path, pgdg: &Pgdg) -> Result<()> {
    let key = "/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc";
    if !rootfs.join(key.trim_start_matches('/')).exists() {
        bail!(
            "postgresql-common in the image has no signing key for the PostgreSQL apt repository ({key})"
        );
    }
    std::fs::write(
        rootfs.join("etc/apt/sources.list.d/pgdg.list"),
        format!(
            "deb [signed-by={key}] {} {} main\n",
            pgdg.mirror, pgdg.suite
        ),
    )
    .context("writing the repository's source list")?;
    std::fs::create_dir_all(rootfs.join("etc/postgresql-common/createcluster.d"))?;
    std::fs::write(
        rootfs.join("etc/postgresql-common/createcluster.d/m1studio.conf"),
        "create_main_cluster = false\n",
    )?;
    let policy = rootfs.join("usr/sbin/policy-rc.d");
    std::fs::write(&policy, "#!/bin/sh\nexit 101\n")?;
    std::fs::set_permissions(&policy, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let mut install = vec![
        "apt-get".to_string(),
        "install".into(),
        "-y".into(),
        "--no-install-recommends".into(),
    ];
    install.extend(pgdg.packages.iter().cloned());
    for argv in [vec!["apt-get".to_string(), "update".into()], install] {
        let output = tokio::process::Command::new("chroot")
            .arg(rootfs)
            .args(&argv)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .await
            .with_context(|| format!("running {} in the image", argv.join(" ")))?;
        if !output.status.success() {
            let err = String::from_utf8_lossy(&output.stderr);
            bail!(
                "{} failed in the image ({}): {}; is {} reachable?",
                argv.join(" "),
                output.status,
                err.lines().rev().take(5).collect::<Vec<_>>().join("; "),
                pgdg.mirror
            );
        }
    }
    std::fs::remove_file(&policy)?;
    Ok(())
}

/// What the packages leave that a node must not share with every other one, or that a
/// container without an init system needs otherwise: the SSH host keys go (each container makes
/// its own), and supervisord's socket is opened to the postgres group, so that repmgr, running as
/// postgres, can stop and start Postgres in a switchover.
fn prepare_rootfs(rootfs: &std::path::Path) -> Result<()> {
    for entry in std::fs::read_dir(rootfs.join("etc/ssh"))?.flatten() {
        if entry.file_name().to_string_lossy().starts_with("ssh_host_") {
            std::fs::remove_file(entry.path())?;
        }
    }
    let conf = rootfs.join("etc/supervisor/supervisord.conf");
    let text = std::fs::read_to_string(&conf).context("reading supervisord.conf")?;
    let opened: String = text
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("chmod=0700") {
                "chmod=0770\nchown=root:postgres".to_string()
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    if opened == text.trim_end_matches('\n') {
        bail!("supervisord.conf has no socket mode to change: the supervisor package changed");
    }
    std::fs::write(&conf, opened + "\n").context("writing supervisord.conf")?;
    Ok(())
}

/// Removes a folder when dropped.
struct Cleanup(std::path::PathBuf);

fn scopeguard(path: std::path::PathBuf) -> Cleanup {
    Cleanup(path)
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
