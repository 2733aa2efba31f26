//! Scopes (Landlock ABI 6): signals and abstract unix sockets stay inside the domain.
#![allow(clippy::unwrap_used)] // tests: a failed set-up step is a failed test

mod common;

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::process::{Child, Command};

use common::{expect_errno, expect_ok, has_abi, in_child};
use libc::EPERM;
use nucleus_landlock_policy::{Compat, CompiledPolicy, Enforcement, Policy, Scope};

fn scope_policy(scopes: Vec<Scope>) -> CompiledPolicy {
    let mut p = Policy::default();
    p.compat = Compat::Strict;
    p.handle_fs = Some(Vec::new());
    p.scopes = scopes;
    p.compile().unwrap()
}

fn restrict(compiled: &CompiledPolicy) -> Result<(), String> {
    let report = compiled
        .restrict_self()
        .map_err(|e| format!("restrict_self: {e}"))?;
    if report.status != Enforcement::FullyEnforced {
        return Err(format!("not fully enforced: {report:?}"));
    }
    Ok(())
}

fn kill(pid: libc::pid_t, sig: libc::c_int) -> std::io::Result<()> {
    // SAFETY: kill(2) takes plain integers.
    if unsafe { libc::kill(pid, sig) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A process outside any domain, killed and reaped on drop.
struct Outsider(Child);

impl Drop for Outsider {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn signalling_outside_the_domain_is_eperm() {
    if !has_abi(6, "signalling_outside_the_domain_is_eperm") {
        return;
    }
    let outsider = Outsider(Command::new("sleep").arg("30").spawn().unwrap());
    let pid = outsider.0.id() as libc::pid_t;
    let compiled = scope_policy(vec![Scope::Signal]);
    in_child(|| {
        restrict(&compiled)?;
        expect_errno("kill outsider SIGTERM", kill(pid, libc::SIGTERM), EPERM)?;
        // SAFETY: getppid(2) cannot fail.
        expect_errno("kill parent 0", kill(unsafe { libc::getppid() }, 0), EPERM)?;
        // A process started after the restriction is in the domain.
        // SAFETY: the grandchild only pauses until killed.
        let inner = unsafe { libc::fork() };
        if inner == 0 {
            loop {
                // SAFETY: pause(2) has no arguments.
                unsafe { libc::pause() };
            }
        }
        expect_ok("kill own child", kill(inner, libc::SIGKILL))?;
        // SAFETY: reaping our own child.
        unsafe { libc::waitpid(inner, std::ptr::null_mut(), 0) };
        expect_ok("kill self 0", kill(std::process::id() as libc::pid_t, 0))
    });

    // Without the scope, the same signal goes through.
    let unscoped = scope_policy(vec![Scope::AbstractUnixSocket]);
    in_child(|| {
        restrict(&unscoped)?;
        expect_ok("kill outsider 0", kill(pid, 0))
    });
}

#[test]
fn connecting_to_an_abstract_socket_outside_is_eperm() {
    if !has_abi(6, "connecting_to_an_abstract_socket_outside_is_eperm") {
        return;
    }
    let name = format!("nucleus-landlock-test-{}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let _outside = UnixListener::bind_addr(&addr).unwrap();
    let inside_name = format!("{name}-inside");

    let compiled = scope_policy(vec![Scope::AbstractUnixSocket]);
    in_child(|| {
        restrict(&compiled)?;
        expect_errno("connect outside", UnixStream::connect_addr(&addr), EPERM)?;
        let inside = SocketAddr::from_abstract_name(inside_name.as_bytes()).unwrap();
        let _listener = expect_ok("bind inside", UnixListener::bind_addr(&inside))?;
        expect_ok("connect inside", UnixStream::connect_addr(&inside)).map(drop)
    });

    let unscoped = scope_policy(vec![Scope::Signal]);
    in_child(|| {
        restrict(&unscoped)?;
        expect_ok("connect outside", UnixStream::connect_addr(&addr)).map(drop)
    });
}
