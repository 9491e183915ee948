package io.predcode.cli;

import java.util.Arrays;
import java.util.List;

/**
 * metrics.csv's earlier rows in a resumed run's columns. The run that wrote them may have had other columns: the
 * alignment monitor on or off, or no energy columns (Spark runs before they had them). Each value goes under its own
 * column's name; a column the earlier run did not have is left blank, one this run does not have is dropped, so every
 * row has the header's fields.
 */
final class MetricsColumns {
    private final String[] header;
    private final int[] from; // for each of this run's columns, its index in the earlier rows, or -1

    /** Both headers without their line end. */
    MetricsColumns(String earlierHeader, String header) {
        this.header = header.split(",", -1);
        List<String> earlier = Arrays.asList(earlierHeader.split(",", -1));
        from = Arrays.stream(this.header).mapToInt(earlier::indexOf).toArray();
    }

    /** An earlier row in this run's columns. */
    String relay(String row) {
        String[] values = row.split(",", -1);
        StringBuilder b = new StringBuilder();
        for (int c = 0; c < header.length; c++) {
            if (c > 0) b.append(',');
            if (from[c] >= 0 && from[c] < values.length) b.append(values[from[c]]);
        }
        return b.toString();
    }
}
