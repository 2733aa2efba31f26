//! TCP rules (Landlock ABI 4), enforced in a forked child against a listener the test holds.
#![allow(clippy::unwrap_used)] // tests: a failed set-up step is a failed test

mod common;

use std::net::{TcpListener, TcpStream};

use common::{expect_errno, expect_ok, has_abi, in_child};
use libc::EACCES;
use nucleus_landlock_policy::{
    Compat, CompiledPolicy, DefaultOptions, Enforcement, NetAccess, NetRule, Policy,
};

/// A strict policy that handles only TCP (bind and connect), allowing `rules`.
fn net_policy(rules: Vec<NetRule>) -> CompiledPolicy {
    let mut p = Policy::default();
    p.compat = Compat::Strict;
    p.handle_fs = Some(Vec::new());
    p.handle_net = vec![NetAccess::BindTcp, NetAccess::ConnectTcp];
    p.net = rules;
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

/// A port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn connecting_to_a_port_not_allowed_is_eacces() {
    if !has_abi(4, "connecting_to_a_port_not_allowed_is_eacces") {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let other = port.wrapping_add(1).max(1);

    let denied = net_policy(vec![NetRule::new(other, [NetAccess::ConnectTcp])]);
    in_child(|| {
        restrict(&denied)?;
        expect_errno("connect", TcpStream::connect(("127.0.0.1", port)), EACCES)
    });

    let allowed = net_policy(vec![NetRule::new(port, [NetAccess::ConnectTcp])]);
    in_child(|| {
        restrict(&allowed)?;
        expect_ok("connect", TcpStream::connect(("127.0.0.1", port))).map(drop)
    });
}

#[test]
fn binding_a_port_not_allowed_is_eacces() {
    if !has_abi(4, "binding_a_port_not_allowed_is_eacces") {
        return;
    }
    let port = free_port();
    // connect-tcp on the port does not allow binding it.
    let denied = net_policy(vec![NetRule::new(port, [NetAccess::ConnectTcp])]);
    in_child(|| {
        restrict(&denied)?;
        expect_errno("bind", TcpListener::bind(("127.0.0.1", port)), EACCES)
    });

    let allowed = net_policy(vec![NetRule::new(port, [NetAccess::BindTcp])]);
    in_child(|| {
        restrict(&allowed)?;
        expect_ok("bind", TcpListener::bind(("127.0.0.1", port))).map(drop)
    });
}

#[test]
fn default_container_with_shared_network_allows_listed_ports_only() {
    if !has_abi(
        6,
        "default_container_with_shared_network_allows_listed_ports_only",
    ) {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let other_port = other.local_addr().unwrap().port();
    let bind_port = free_port();

    let mut opts = DefaultOptions::default();
    opts.compat = Compat::Strict;
    opts.shared_network = true;
    opts.tcp_connect = vec![port];
    opts.tcp_bind = vec![bind_port];
    let compiled = Policy::default_container(&opts).compile().unwrap();
    in_child(|| {
        restrict(&compiled)?;
        expect_ok("connect listed", TcpStream::connect(("127.0.0.1", port)))?;
        expect_errno(
            "connect unlisted",
            TcpStream::connect(("127.0.0.1", other_port)),
            EACCES,
        )?;
        expect_ok("bind listed", TcpListener::bind(("127.0.0.1", bind_port)))?;
        expect_errno("bind ephemeral", TcpListener::bind("127.0.0.1:0"), EACCES)
    });

    // Without a shared network, the policy leaves TCP alone (the namespace isolates it).
    opts.shared_network = false;
    let compiled = Policy::default_container(&opts).compile().unwrap();
    in_child(|| {
        restrict(&compiled)?;
        expect_ok("connect", TcpStream::connect(("127.0.0.1", other_port))).map(drop)
    });
}
