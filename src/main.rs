//! The `usersvc` binary: parse the command line and hand over to [`usersvc::cli`].

fn main() -> std::process::ExitCode {
    usersvc::cli::main()
}
