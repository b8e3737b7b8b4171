use std::process::ExitCode;

// Ingest validates rows on several threads, each allocating small strings: glibc's malloc
// contends there, mimalloc does not (DataFusion's own CLI makes the same choice).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    rebuy::cli::main()
}
