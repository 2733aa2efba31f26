//! The child's half: build the WASI context, instantiate, run, classify how it ended.

use crate::error::WasmError;
use crate::host::{Host, Limits, P2Ctx, Program};
use crate::outcome::{TrapKind, WasmOutcome};
use crate::prepared::PreparedWasm;
use std::future::Future;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;
use wasmtime::{Engine, InstancePre, Store, Trap};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// The deadline's thread: bumps the engine's epoch once the deadline passes, which traps
/// the running wasm code at its next epoch check. Dropping it stops and joins the thread.
struct Ticker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    fn start(engine: Engine, after: Duration) -> std::io::Result<Ticker> {
        let (stop, wait) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("wasm-deadline".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                if let Err(mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(after) {
                    engine.increment_epoch();
                }
            })?;
        Ok(Ticker {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl PreparedWasm {
    /// Runs the module to its end and tells how it ended. Runs in the sandboxed workload
    /// process, after Landlock and seccomp (it needs no `execve`:
    /// `nucleus_seccomp::Profile::default_agent().deny_exec()` suits it), in place of
    /// `execve`; the caller then `_exit`s with [`WasmOutcome::exit_code`].
    ///
    /// Starts threads: an epoch thread when there is a deadline, and wasmtime-wasi's stdin
    /// reader if the guest reads stdin. Host calls run on the calling thread.
    ///
    /// An `Err` is a host setup failure (a preopen that cannot be opened in the sandbox, no
    /// runtime), never something the guest did.
    ///
    /// ```no_run
    /// use nucleus_wasm::WasmPolicy;
    ///
    /// let prepared = WasmPolicy::new("hello.wasm").prepare()?; // parent
    /// // ... clone, namespaces, Landlock, seccomp ...
    /// let outcome = prepared.run()?; // child
    /// std::process::exit(outcome.exit_code);
    /// # Ok::<(), nucleus_wasm::WasmError>(())
    /// ```
    pub fn run(&self) -> Result<WasmOutcome, WasmError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| WasmError::Runtime { source })?;
        let mut builder = self.wasi_builder()?;
        let limits = Limits::new(self.policy.max_memory);
        match &self.program {
            Program::Core(pre) => {
                let host = Host {
                    wasi: builder.build_p1(),
                    limits,
                };
                let mut store = self.store(host)?;
                let _ticker = self.ticker()?;
                let result = runtime.block_on(self.bounded(run_core(pre, &mut store)));
                Ok(self.outcome(result, &mut store))
            }
            Program::Component(pre) => {
                let host = Host {
                    wasi: P2Ctx::new(builder.build()),
                    limits,
                };
                let mut store = self.store(host)?;
                let _ticker = self.ticker()?;
                let result = runtime.block_on(self.bounded(run_component(pre, &mut store)));
                Ok(self.outcome(result, &mut store))
            }
        }
    }

    /// Args, env (only the policy's), the host's stdio, the preopens (opened here, in the
    /// sandbox's view). Clocks and random are the host's; no sockets.
    fn wasi_builder(&self) -> Result<WasiCtxBuilder, WasmError> {
        let policy = &self.policy;
        let mut b = WasiCtxBuilder::new();
        // Before the preopens: each directory takes the setting when opened. File I/O on
        // this thread, not on a pool of blocking threads.
        b.allow_blocking_current_thread(true);
        b.inherit_stdio();
        b.arg(policy.program_name());
        b.args(&policy.args);
        b.envs(&policy.env);
        for p in &policy.preopens {
            let perms = if p.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            b.preopened_dir(&p.host, &p.guest, perms)
                .map_err(|source| WasmError::OpenPreopen {
                    path: p.host.clone(),
                    source,
                })?;
        }
        Ok(b)
    }

    fn store<W: Send + 'static>(&self, host: Host<W>) -> Result<Store<Host<W>>, WasmError> {
        let mut store = Store::new(&self.engine, host);
        store.limiter(|h| &mut h.limits);
        if let Some(fuel) = self.policy.fuel {
            store
                .set_fuel(fuel)
                .map_err(|source| WasmError::Fuel { source })?;
        }
        if self.policy.deadline.is_some() {
            store.set_epoch_deadline(1);
            store.epoch_deadline_trap();
        }
        Ok(store)
    }

    fn ticker(&self) -> Result<Option<Ticker>, WasmError> {
        self.policy
            .deadline
            .map(|d| Ticker::start(self.engine.clone(), d))
            .transpose()
            .map_err(|source| WasmError::Runtime { source })
    }

    /// `run` under the deadline: the epoch stops wasm code, this stops a wait in a host call.
    async fn bounded(
        &self,
        run: impl Future<Output = wasmtime::Result<i32>>,
    ) -> wasmtime::Result<i32> {
        match self.policy.deadline {
            None => run.await,
            Some(d) => match tokio::time::timeout(d, run).await {
                Ok(result) => result,
                Err(_) => Err(wasmtime::Error::new(Trap::Interrupt)),
            },
        }
    }

    fn outcome<W>(&self, result: wasmtime::Result<i32>, store: &mut Store<Host<W>>) -> WasmOutcome {
        let limit_hit = store.data().limits.hit();
        let mut outcome = match result {
            Ok(code) => WasmOutcome::exited(code),
            Err(e) => {
                let mut o = WasmOutcome::from_error(&e);
                // Instantiation refused by the limiter is neither a trap nor an exit.
                if limit_hit && o.trap == Some(TrapKind::Host) {
                    o.trap = Some(TrapKind::MemoryLimit);
                }
                o
            }
        };
        outcome.memory_limit_hit = limit_hit;
        if let Some(fuel) = self.policy.fuel {
            outcome.fuel_consumed = Some(fuel.saturating_sub(store.get_fuel().unwrap_or(0)));
        }
        outcome
    }
}

async fn run_core(
    pre: &InstancePre<Host<WasiP1Ctx>>,
    store: &mut Store<Host<WasiP1Ctx>>,
) -> wasmtime::Result<i32> {
    let instance = pre.instantiate_async(&mut *store).await?;
    let start = instance.get_typed_func::<(), ()>(&mut *store, "_start")?;
    start.call_async(&mut *store, ()).await?;
    Ok(0)
}

async fn run_component(
    pre: &CommandPre<Host<P2Ctx>>,
    store: &mut Store<Host<P2Ctx>>,
) -> wasmtime::Result<i32> {
    let command = pre.instantiate_async(&mut *store).await?;
    match command.wasi_cli_run().call_run(&mut *store).await? {
        Ok(()) => Ok(0),
        Err(()) => Ok(1),
    }
}
