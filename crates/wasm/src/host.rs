//! The WASI host a module is linked against: the store's data (WASI state and the resource
//! limiter) and the linking itself. Linking happens in the parent (preparation), the store is
//! built in the child (the run); both name the same types, which live here.

use crate::compile::Compiled;
use crate::error::WasmError;
use std::path::Path;
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, InstancePre, Linker, ResourceLimiter, UnknownImportError};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The store's data: the WASI state and the limiter.
pub(crate) struct Host<W> {
    pub(crate) wasi: W,
    pub(crate) limits: Limits,
}

/// WASI preview 2 state.
pub(crate) struct P2Ctx {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl P2Ctx {
    pub(crate) fn new(ctx: WasiCtx) -> P2Ctx {
        P2Ctx {
            ctx,
            table: ResourceTable::new(),
        }
    }
}

impl WasiView for Host<P2Ctx> {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi.ctx,
            table: &mut self.wasi.table,
        }
    }
}

/// Caps on linear memory (bytes) and tables (elements), summed over all of them.
#[derive(Default)]
pub(crate) struct Limits {
    max_memory: Option<usize>,
    max_table: Option<usize>,
    memory: usize,
    table: usize,
    hit: bool,
}

impl Limits {
    /// Memory capped at `max_memory` bytes, tables at an eighth of that in elements (a table
    /// element is at least eight bytes of host memory); no cap without `max_memory`.
    pub(crate) fn new(max_memory: Option<u64>) -> Limits {
        let cap = |bytes: u64| usize::try_from(bytes).unwrap_or(usize::MAX);
        Limits {
            max_memory: max_memory.map(cap),
            max_table: max_memory.map(|m| cap(m / 8)),
            ..Limits::default()
        }
    }

    /// Whether a growth was refused.
    pub(crate) fn hit(&self) -> bool {
        self.hit
    }
}

/// Admits growing one of the resources from `current` to `desired` when the new total stays
/// within `cap`.
fn admit(total: &mut usize, cap: Option<usize>, current: usize, desired: usize) -> bool {
    let next = total.saturating_sub(current).saturating_add(desired);
    match cap {
        Some(cap) if next > cap => false,
        _ => {
            *total = next;
            true
        }
    }
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = admit(&mut self.memory, self.max_memory, current, desired);
        self.hit |= !ok;
        Ok(ok)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = admit(&mut self.table, self.max_table, current, desired);
        self.hit |= !ok;
        Ok(ok)
    }
}

/// The program, linked and ready to instantiate.
pub(crate) enum Program {
    Core(InstancePre<Host<WasiP1Ctx>>),
    Component(CommandPre<Host<P2Ctx>>),
}

/// Links against the WASI host; a missing import is named.
pub(crate) fn link(engine: &Engine, compiled: Compiled, path: &Path) -> Result<Program, WasmError> {
    let link_err = |source: wasmtime::Error| WasmError::Link {
        path: path.to_owned(),
        source,
    };
    match compiled {
        Compiled::Core(module) => {
            let mut linker: Linker<Host<WasiP1Ctx>> = Linker::new(engine);
            wasmtime_wasi::p1::add_to_linker_async(&mut linker, |h| &mut h.wasi)
                .map_err(|source| WasmError::Engine { source })?;
            let pre = linker.instantiate_pre(&module).map_err(|e| {
                match e.downcast_ref::<UnknownImportError>() {
                    Some(u) => WasmError::MissingImport {
                        path: path.to_owned(),
                        module: u.module().to_owned(),
                        name: u.name().to_owned(),
                    },
                    None => link_err(e),
                }
            })?;
            if module.get_export("_start").is_none() {
                return Err(WasmError::NoStart {
                    path: path.to_owned(),
                });
            }
            Ok(Program::Core(pre))
        }
        Compiled::Component(component) => {
            let mut linker = wasmtime::component::Linker::<Host<P2Ctx>>::new(engine);
            wasmtime_wasi::p2::add_to_linker_async(&mut linker)
                .map_err(|source| WasmError::Engine { source })?;
            let pre = linker.instantiate_pre(&component).map_err(link_err)?;
            CommandPre::new(pre)
                .map(Program::Component)
                .map_err(link_err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_sum_over_resources() {
        let mut total = 0;
        assert!(admit(&mut total, Some(100), 0, 60));
        assert!(!admit(&mut total, Some(100), 0, 50));
        assert!(admit(&mut total, Some(100), 60, 100));
        assert_eq!(total, 100);
        assert!(admit(&mut total, None, 100, 1 << 40));
    }
}
