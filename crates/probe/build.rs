//! Compiles the BPF program with clang and generates its Rust skeleton into OUT_DIR.

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "src/bpf/probe.bpf.c";

fn main() {
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("probe.skel.rs");
    let clang = std::env::var_os("CLANG").unwrap_or_else(|| "clang".into());
    if let Err(e) = SkeletonBuilder::new()
        .source(SRC)
        .clang(&clang)
        .clang_args(["-I", "src/bpf", "-Wall", "-Wno-unused-function", "-mcpu=v3"])
        .build_and_generate(&out)
    {
        panic!(
            "cannot build the BPF program {SRC} with {} (Debian: apt-get install clang libelf-dev zlib1g-dev): {e:#}",
            std::path::Path::new(&clang).display()
        );
    }
    println!("cargo:rerun-if-changed=src/bpf");
    println!("cargo:rerun-if-env-changed=CLANG");
}
