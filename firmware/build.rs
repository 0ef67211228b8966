//! Links with the memory layout of the target's architecture (`link/`).

use std::env;
use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join("link");
    let script = match env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("arm") => "cortex-m.ld",
        Ok("riscv32") => "riscv32.ld",
        // Any other target (a host `cargo check`): no script.
        _ => return,
    };
    println!("cargo:rustc-link-arg-bins=-T{}", dir.join(script).display());
    println!("cargo:rerun-if-changed={}", dir.display());
    println!("cargo:rerun-if-changed=build.rs");
}
