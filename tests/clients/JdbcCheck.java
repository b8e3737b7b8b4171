// pgjdbc against a running `rebuy serve`: queries, prepared statements, DatabaseMetaData and
// ResultSetMetaData as BI tools (Metabase, DBeaver, Tableau via JDBC) use them.
// Usage: java -cp postgresql.jar JdbcCheck.java PORT
import java.sql.*;
import java.util.*;

public class JdbcCheck {
    static int failures = 0;

    interface Check { void run(Connection c) throws Exception; }

    static void check(Connection c, String name, Check body) {
        try {
            body.run(c);
            System.out.println("ok   " + name);
        } catch (Throwable e) {
            failures++;
            System.out.println("FAIL " + name + ": " + e);
        }
    }

    static void require(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/rebuy";
        Properties props = new Properties();
        props.setProperty("user", "analyst");
        try (Connection c = DriverManager.getConnection(url, props)) {
            check(c, "plain query", conn -> {
                try (Statement s = conn.createStatement();
                     ResultSet rs = s.executeQuery("SELECT COUNT(*) FROM orders")) {
                    require(rs.next() && rs.getLong(1) > 0, "count");
                }
            });
            check(c, "prepared statement with parameters", conn -> {
                try (PreparedStatement ps = conn.prepareStatement(
                        "SELECT rfm_segment(?, ?, ?)")) {
                    ps.setInt(1, 5); ps.setInt(2, 5); ps.setInt(3, 5);
                    try (ResultSet rs = ps.executeQuery()) {
                        require(rs.next() && rs.getString(1).equals("Champions"), "segment");
                    }
                    // pgjdbc switches to server-side prepared statements after 5 runs
                    for (int i = 0; i < 7; i++) {
                        ps.setInt(1, 1); ps.setInt(2, 1); ps.setInt(3, 1);
                        try (ResultSet rs = ps.executeQuery()) {
                            require(rs.next() && rs.getString(1).equals("Lost"), "segment " + i);
                        }
                    }
                }
            });
            check(c, "ResultSetMetaData", conn -> {
                try (Statement s = conn.createStatement();
                     ResultSet rs = s.executeQuery(
                         "SELECT customer_id, purchase_days, revenue_usd, next_order_due FROM customer_summary LIMIT 1")) {
                    ResultSetMetaData md = rs.getMetaData();
                    require(md.getColumnCount() == 4, "columns");
                    require(md.getColumnName(1).equals("customer_id"), "name " + md.getColumnName(1));
                    require(md.getColumnType(3) == Types.DOUBLE, "revenue type " + md.getColumnType(3));
                }
            });
            check(c, "DatabaseMetaData.getTables/getColumns/getSchemas/getTypeInfo", conn -> {
                DatabaseMetaData md = conn.getMetaData();
                Set<String> tables = new HashSet<>();
                try (ResultSet rs = md.getTables(null, "public", "%", new String[]{"TABLE", "VIEW"})) {
                    while (rs.next()) tables.add(rs.getString("TABLE_NAME"));
                }
                require(tables.containsAll(List.of("orders", "customers", "customer_summary")), "tables " + tables);
                int cols = 0;
                try (ResultSet rs = md.getColumns(null, "public", "orders", "%")) {
                    while (rs.next()) cols++;
                }
                require(cols >= 10, "orders columns " + cols);
                try (ResultSet rs = md.getColumns(null, "public", "orders", "amount")) {
                    require(rs.next(), "amount column");
                    require(rs.getInt("DATA_TYPE") == Types.NUMERIC, "amount type " + rs.getString("TYPE_NAME"));
                    require(rs.getInt("COLUMN_SIZE") == 18 && rs.getInt("DECIMAL_DIGITS") == 2,
                        "amount size/digits " + rs.getInt("COLUMN_SIZE") + "," + rs.getInt("DECIMAL_DIGITS"));
                }
                boolean publicSchema = false;
                try (ResultSet rs = md.getSchemas()) {
                    while (rs.next()) publicSchema |= rs.getString(1).equals("public");
                }
                require(publicSchema, "public schema");
                int types = 0;
                try (ResultSet rs = md.getTypeInfo()) {
                    while (rs.next()) types++;
                }
                require(types > 10, "types " + types);
                require(md.getDatabaseProductVersion().startsWith("16"), "version " + md.getDatabaseProductVersion());
            });
            check(c, "DatabaseMetaData keys: getPrimaryKeys/getIndexInfo/getImportedKeys/getExportedKeys", conn -> {
                DatabaseMetaData md = conn.getMetaData();
                List<String> pk = new java.util.ArrayList<>();
                try (ResultSet rs = md.getPrimaryKeys(null, "public", "fx_rates")) {
                    while (rs.next()) {
                        require(rs.getString("PK_NAME").equals("fx_rates_pkey"), "pk name " + rs.getString("PK_NAME"));
                        require(rs.getInt("KEY_SEQ") == pk.size() + 1, "key seq " + rs.getInt("KEY_SEQ"));
                        pk.add(rs.getString("COLUMN_NAME"));
                    }
                }
                require(pk.equals(List.of("rate_date", "currency")), "fx_rates key " + pk);
                try (ResultSet rs = md.getPrimaryKeys(null, "public", "orders")) {
                    require(rs.next() && rs.getString("COLUMN_NAME").equals("order_id") && !rs.next(), "orders key");
                }
                List<String> index = new java.util.ArrayList<>();
                try (ResultSet rs = md.getIndexInfo(null, "public", "fx_rates", true, false)) {
                    while (rs.next()) {
                        require(rs.getString("INDEX_NAME").equals("fx_rates_pkey") && !rs.getBoolean("NON_UNIQUE"),
                            "index " + rs.getString("INDEX_NAME"));
                        index.add(rs.getString("COLUMN_NAME"));
                    }
                }
                require(index.equals(List.of("rate_date", "currency")), "fx_rates index " + index);
                try (ResultSet rs = md.getImportedKeys(null, "public", "orders")) {
                    require(!rs.next(), "rebuy declares no foreign keys");
                }
                try (ResultSet rs = md.getExportedKeys(null, "public", "customers")) {
                    require(!rs.next(), "rebuy declares no foreign keys");
                }
            });
            check(c, "DatabaseMetaData.getFunctions lists rebuy's functions", conn -> {
                DatabaseMetaData md = conn.getMetaData();
                List<String> found = new java.util.ArrayList<>();
                try (ResultSet rs = md.getFunctions(null, "public", "rfm%")) {
                    while (rs.next()) found.add(rs.getString("FUNCTION_NAME"));
                }
                require(found.equals(List.of("rfm_segment")), "functions " + found);
                try (ResultSet rs = md.getFunctions(null, "public", "bgnbd_p_alive")) {
                    require(rs.next() && rs.getString("REMARKS") != null && rs.getString("REMARKS").contains("BG/NBD"), "bgnbd_p_alive is listed with its description");
                }
            });
            check(c, "ResultSetMetaData: int4 constants, numeric precision and scale", conn -> {
                try (Statement s = conn.createStatement();
                     ResultSet rs = s.executeQuery(
                         "SELECT 1 AS one, count(*) AS n, amount, CAST(amount AS float8) AS amount FROM orders GROUP BY amount LIMIT 1")) {
                    ResultSetMetaData md = rs.getMetaData();
                    require(md.getColumnType(1) == Types.INTEGER, "constant type " + md.getColumnTypeName(1));
                    require(md.getColumnType(2) == Types.BIGINT, "count type " + md.getColumnTypeName(2));
                    require(md.getColumnType(3) == Types.NUMERIC, "amount type " + md.getColumnTypeName(3));
                    require(md.getPrecision(3) == 18 && md.getScale(3) == 2,
                        "amount precision/scale " + md.getPrecision(3) + "," + md.getScale(3));
                    require(md.getColumnLabel(4).equals("amount") && md.getColumnType(4) == Types.DOUBLE,
                        "repeated name " + md.getColumnLabel(4));
                    require(rs.next() && rs.getInt(1) == 1, "value");
                }
            });
            check(c, "errors with SQLSTATE", conn -> {
                try (Statement s = conn.createStatement()) {
                    s.executeQuery("SELECT * FROM nope");
                    throw new AssertionError("no error");
                } catch (SQLException e) {
                    require("42P01".equals(e.getSQLState()), "state " + e.getSQLState());
                }
                try (Statement s = conn.createStatement(); ResultSet rs = s.executeQuery("SELECT 1")) {
                    require(rs.next(), "usable after error");
                }
            });
        }
        if (failures > 0) {
            System.out.println(failures + " JDBC check(s) failed");
            System.exit(1);
        }
        System.out.println("all JDBC checks passed");
    }
}
