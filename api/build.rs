//! Decides which files `/` serves: the built panel (`panel/dist`, made by `npm run build` in
//! `panel/`) when it exists, else a page saying how to build it (`assets/panel-missing`), so a
//! Rust-only build without Node.js still compiles and serves something useful.

use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(panel_built)");
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".to_owned());
    let dist = Path::new(&manifest).join("../panel/dist");
    if dist.join("index.html").is_file() {
        println!("cargo::rustc-cfg=panel_built");
        // A new build of the panel re-embeds it.
        println!("cargo::rerun-if-changed=../panel/dist");
    } else {
        // Watch the panel's folder, so that a build appearing there is picked up.
        println!("cargo::rerun-if-changed=../panel");
    }
    println!("cargo::rerun-if-changed=build.rs");
}
