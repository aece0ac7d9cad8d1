//! The dashboard embeds Apache ECharts (npm package `echarts`), which `scripts/fetch-web-assets.sh`
//! fetches from the npm registry and checks; without it the build stops here with the fix,
//! not with an `include_bytes!` error about a missing path.

fn main() {
    let vendor = std::path::Path::new("web/vendor/echarts.min.js");
    println!("cargo:rerun-if-changed=web");
    if !vendor.exists() {
        panic!(
            "crates/serve/{} is missing: run scripts/fetch-web-assets.sh (it fetches echarts 6.1.0 from the npm registry and checks its checksum; ./run does it for you)",
            vendor.display()
        );
    }
}
