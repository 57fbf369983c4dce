//! [`ResultTable`]: what the report, costs and scenario engines return — column names and rows
//! of exact [`Cell`]s — handed to Python as rows or as Arrow batches (`crate::arrow::result`).

/// One cell of a result table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    Null,
    Int(i128),
    Text(String),
}

impl Cell {
    pub fn text(v: Option<String>) -> Cell {
        v.map_or(Cell::Null, Cell::Text)
    }
    pub fn uint(v: u128) -> Cell {
        Cell::Int(i128::try_from(v).expect("sums stay below 2^127"))
    }
    pub fn money(v: Option<u128>) -> Cell {
        v.map_or(Cell::Null, Cell::uint)
    }
}

/// A result table: column names and rows of cells.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResultTable {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}
