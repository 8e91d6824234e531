//! The `usersvc` binary: parse the command line and hand over to [`usersvc::cli`].

// Requests allocate many small short-lived objects (JSON, GraphQL values, rows); mimalloc serves
// them with far less contention and time than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    usersvc::cli::main()
}
