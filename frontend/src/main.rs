//! The designer's entry point.

fn main() {
    m1studio_frontend::run();
}
