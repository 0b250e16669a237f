//! `column IN (...)` that the connection's prepared-statement cache keeps.
//!
//! Diesel's `eq_any` marks every query it is part of as not to be cached (its SQL has
//! as many placeholders as values), so the list pages, which load a page's sections,
//! parties and versions by their ids, had SQLite parse those statements again on every
//! request. [`any_of`] pads the list to the next power of two by repeating its last
//! value (which changes nothing: `IN` is a set test), so one call site has a handful of
//! statement texts at most, and lets the cache keep them by their text.

use diesel::backend::Backend;
use diesel::expression::{
    is_aggregate, AppearsOnTable, Expression, SelectableExpression, ValidGrouping,
};

use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{Bool, HasSqlType, SingleValue};
use diesel::QueryResult;

/// The most values one list takes: beyond it a caller pages (the list pages show at
/// most 500 rows).
pub const MOST: usize = 1024;

/// `column IN (values)`, see the module's description. An empty list matches nothing.
#[derive(Debug, Clone)]
pub struct AnyOf<C, V> {
    column: C,
    values: Vec<V>,
}

/// `column IN (values)`, padded for the statement cache.
pub fn any_of<C, V: Clone>(column: C, values: impl IntoIterator<Item = V>) -> AnyOf<C, V> {
    let mut values: Vec<V> = values.into_iter().collect();
    if let Some(last) = values.last().cloned() {
        let bucket = values.len().next_power_of_two();
        values.resize(bucket, last);
    }
    AnyOf { column, values }
}

impl<C, V> Expression for AnyOf<C, V>
where
    C: Expression,
{
    type SqlType = Bool;
}

impl<C, V, QS> AppearsOnTable<QS> for AnyOf<C, V> where C: AppearsOnTable<QS> {}

impl<C, V, QS> SelectableExpression<QS> for AnyOf<C, V> where C: SelectableExpression<QS> {}

impl<C, V> ValidGrouping<()> for AnyOf<C, V> {
    type IsAggregate = is_aggregate::Never;
}

impl<C, V> QueryId for AnyOf<C, V> {
    type QueryId = ();
    // Keyed by its SQL text in the statement cache, which the padding keeps to a few.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<C, V, DB> QueryFragment<DB> for AnyOf<C, V>
where
    DB: Backend + HasSqlType<C::SqlType>,
    C: Expression + QueryFragment<DB>,
    C::SqlType: SingleValue,
    V: ToSql<C::SqlType, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if self.values.is_empty() {
            out.push_sql("1 = 0");
            return Ok(());
        }
        if self.values.len() > MOST {
            out.unsafe_to_cache_prepared();
        }
        self.column.walk_ast(out.reborrow())?;
        out.push_sql(" IN (");
        for (i, value) in self.values.iter().enumerate() {
            if i > 0 {
                out.push_sql(", ");
            }
            out.push_bind_param::<C::SqlType, V>(value)?;
        }
        out.push_sql(")");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::schema::organizations;

    #[test]
    fn a_list_is_padded_to_a_power_of_two_with_its_last_value() {
        let three = any_of(organizations::id, ["a", "b", "c"].map(String::from));
        assert_eq!(three.values, ["a", "b", "c", "c"]);
        let four = any_of(organizations::id, ["a", "b", "c", "d"].map(String::from));
        assert_eq!(four.values.len(), 4);
        let one = any_of(organizations::id, ["a"].map(String::from));
        assert_eq!(one.values, ["a"]);
        let none = any_of(organizations::id, Vec::<String>::new());
        assert!(none.values.is_empty());
    }

    #[test]
    fn lists_of_many_lengths_make_few_statements() {
        use diesel::query_builder::QueryBuilder;
        use diesel::sqlite::Sqlite;
        let mut texts = std::collections::BTreeSet::new();
        for n in 1..=100 {
            let ids: Vec<String> = (0..n).map(|i| format!("id{i}")).collect();
            let expr = any_of(organizations::id, ids);
            let mut builder = <Sqlite as Backend>::QueryBuilder::default();
            QueryFragment::<Sqlite>::to_sql(&expr, &mut builder, &Sqlite).expect("sql");
            texts.insert(builder.finish());
        }
        assert_eq!(texts.len(), 8, "1, 2, 4, ..., 128 placeholders");
    }
}
