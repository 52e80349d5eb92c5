//! sharekeepd as a Windows service, through the `windows-service` crate:
//!
//! ```text
//! sharekeepd [flags] install    registers "sharekeepd" with the service control manager:
//!                                automatic start, LocalSystem, started as
//!                                `sharekeepd.exe [flags] run-service` (the flags kept)
//! sharekeepd uninstall           stops it (waits for it) and removes it
//! sharekeepd [flags] run-service what the manager starts: Running reported once the service
//!                                is up; Stop or Shutdown cancel its token (a running backup
//!                                is cancelled cleanly, as by SIGTERM), StopPending while it
//!                                winds down, then Stopped with its exit code
//! ```
//! A service has no console: it logs to `<state>\sharekeepd.log`.

use crate::service::config::Settings;
use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use windows_service::service::{
    ServiceAccess, ServiceControl, ServiceControlAccept, ServiceErrorControl, ServiceExitCode,
    ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};

/// The service's name in the service control manager.
pub(crate) const SERVICE_NAME: &str = "sharekeepd";
const DISPLAY_NAME: &str = "sharekeep: share rights and backups";
const DESCRIPTION: &str =
    "Keeps each share's NTFS rights applied as its policy says, and runs its backup plan.";
const SERVICE_TYPE: ServiceType = ServiceType::OWN_PROCESS;
/// How long stopping may take: running work is given 20 s to clean up.
const STOP_WAIT: Duration = Duration::from_secs(30);

/// `sharekeepd install | uninstall | run-service`.
#[derive(Debug, Clone, Copy, clap::Subcommand)]
pub(crate) enum Command {
    /// Register sharekeepd as a Windows service started at boot, as LocalSystem, with the
    /// flags given before this word; then `sc start sharekeepd`.
    Install,
    /// Stop the service and remove it.
    Uninstall,
    /// Run under the service control manager (what `install` registers; not for a console).
    RunService,
}

/// The exit status of a service command, its error printed.
pub(crate) fn exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sharekeepd: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Registers the service, to be started with `flags` then `run-service`.
pub(crate) fn install(flags: &[OsString]) -> anyhow::Result<()> {
    let manager = ServiceManager::local_computer(
        None::<&str>,
        ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
    )
    .map_err(|e| anyhow::anyhow!("the service control manager: {e} (run as an administrator)"))?;
    let mut launch_arguments = flags.to_vec();
    launch_arguments.push("run-service".into());
    let info = ServiceInfo {
        name: SERVICE_NAME.into(),
        display_name: DISPLAY_NAME.into(),
        service_type: SERVICE_TYPE,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: std::env::current_exe()?,
        launch_arguments,
        dependencies: vec![],
        account_name: None, // LocalSystem
        account_password: None,
    };
    let service = manager
        .create_service(&info, ServiceAccess::CHANGE_CONFIG)
        .map_err(|e| anyhow::anyhow!("creating the service {SERVICE_NAME}: {e} (already installed? `sharekeepd uninstall` first)"))?;
    service.set_description(DESCRIPTION)?;
    println!("installed the service {SERVICE_NAME}; start it with `sc start {SERVICE_NAME}`");
    Ok(())
}

/// Stops the service if it runs (waiting for it), then removes it.
pub(crate) fn uninstall() -> anyhow::Result<()> {
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
        .map_err(|e| {
            anyhow::anyhow!("the service control manager: {e} (run as an administrator)")
        })?;
    let service = manager
        .open_service(
            SERVICE_NAME,
            ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE,
        )
        .map_err(|e| anyhow::anyhow!("the service {SERVICE_NAME}: {e} (not installed?)"))?;
    if service.query_status()?.current_state != ServiceState::Stopped {
        service.stop()?;
        let deadline = std::time::Instant::now() + STOP_WAIT;
        while service.query_status()?.current_state != ServiceState::Stopped {
            if std::time::Instant::now() > deadline {
                anyhow::bail!(
                    "the service {SERVICE_NAME} did not stop within {STOP_WAIT:?}; try again"
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    service.delete()?;
    println!("removed the service {SERVICE_NAME}");
    Ok(())
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// Hands the process to the service control manager, which calls [`service_main`].
pub(crate) fn run_service(settings: Settings) -> anyhow::Result<()> {
    let _ = SETTINGS.set(settings);
    service_dispatcher::start(SERVICE_NAME, ffi_service_main).map_err(|e| {
        anyhow::anyhow!("{e}: `run-service` is for the service control manager; in a console, run sharekeepd without it")
    })
}

define_windows_service!(ffi_service_main, service_main);

fn status(state: ServiceState, exit: u32, wait: Duration) -> ServiceStatus {
    ServiceStatus {
        service_type: SERVICE_TYPE,
        current_state: state,
        controls_accepted: if state == ServiceState::Running {
            ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN
        } else {
            ServiceControlAccept::empty()
        },
        exit_code: ServiceExitCode::Win32(exit),
        checkpoint: 0,
        wait_hint: wait,
        process_id: None,
    }
}

/// Logs to `<state>\sharekeepd.log` (a service has no console).
fn log_to_file(settings: &Settings) -> std::io::Result<()> {
    sharekeep::sys::private_dirs(&settings.state)?;
    let file = sharekeep::sys::append_private(&settings.state.join("sharekeepd.log"))?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&settings.log_level)
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .with_target(false)
        .init();
    Ok(())
}

fn service_main(_arguments: Vec<OsString>) {
    let Some(settings) = SETTINGS.get().cloned() else {
        return;
    };
    let logged = log_to_file(&settings);
    let stop = CancellationToken::new();
    let handle = Arc::new(OnceLock::new());
    let handler = {
        let (stop, handle) = (stop.clone(), handle.clone());
        move |control| match control {
            ServiceControl::Stop | ServiceControl::Shutdown => {
                tracing::info!("the service control manager asks sharekeepd to stop");
                if let Some(h) = handle.get() {
                    let h: &service_control_handler::ServiceStatusHandle = h;
                    let _ = h.set_service_status(status(ServiceState::StopPending, 0, STOP_WAIT));
                }
                stop.cancel();
                ServiceControlHandlerResult::NoError
            }
            ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
            _ => ServiceControlHandlerResult::NotImplemented,
        }
    };
    let Ok(registered) = service_control_handler::register(SERVICE_NAME, handler) else {
        return;
    };
    let _ = handle.set(registered);
    if let Err(e) = logged {
        // No log: the exit code tells the manager (ERROR_CANNOT_MAKE).
        let _ = registered.set_service_status(status(ServiceState::Stopped, 82, Duration::ZERO));
        drop(e);
        return;
    }
    let _ = registered.set_service_status(status(ServiceState::Running, 0, Duration::ZERO));
    let result = crate::serve(settings, move |token, _reload| {
        tokio::spawn(async move {
            stop.cancelled().await;
            token.cancel();
        });
        Ok(())
    });
    let code = match result {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("sharekeepd: {e:#}");
            1 // ERROR_INVALID_FUNCTION: see the log
        }
    };
    let _ = registered.set_service_status(status(ServiceState::Stopped, code, Duration::ZERO));
}
