//! The designer's components.

pub mod field;
pub mod form;
pub mod panels;
