package io.predcode.data;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.TreeSet;
import java.util.regex.Pattern;

/**
 * A labelled table in CSV files ({@code --data csv:FILE.csv} or {@code csv:DIR}), as a spreadsheet, pandas'
 * {@code to_csv} or a database export writes it: one sample a row, its features as numbers, its class in one column.
 * <ul>
 * <li>Fields are separated by commas; a field may be quoted ({@code "a, b"}, {@code ""} for a quote); spaces around an
 * unquoted field are dropped; blank lines are skipped; UTF-8 (a byte-order mark is skipped), gzipped or not.</li>
 * <li>The first row is a header where it names a column whose next row holds a number (a name over numbers); each
 * column must then be named, once (an unnamed first column is most often the index pandas writes).</li>
 * <li>The label is the column the header names {@code label}, {@code class} or {@code target} (in any case), else the
 * last. Labels that are all whole numbers are class indices 0..K-1 (K the largest plus one); any other labels are class
 * names, K the distinct ones in both files, in sorted order, so that the indices do not depend on the rows' order.</li>
 * <li>Every other field is a feature: a finite number (float32); a sample's shape is [features].</li>
 * </ul>
 * {@code csv:DIR} takes {@code train.csv} and {@code test.csv} there (or {@code .csv.gz}); {@code csv:FILE.csv} holds a
 * fifth of each class's rows out as the test set, drawn with a fixed seed: the same rows whatever a run's --seed. A suffix names
 * the label's column otherwise: {@code csv:FILE.csv:Survived} by the header's name, {@code csv:FILE.csv:1} by number.
 */
public final class Csv {
    private Csv() {}

    /** The share of a single file's rows held out as its test set. */
    static final double TEST_SHARE = 0.2;
    /** Names a header may give the label's column, lower-cased. */
    private static final List<String> LABEL_NAMES = List.of("label", "class", "target");
    /** A number as a person or a program writes it in a table; no hex, no "NaN", no "1f" (Java's own parsers take those). */
    private static final Pattern NUMBER = Pattern.compile("[+-]?(\\d+\\.?\\d*|\\.\\d+)([eE][+-]?\\d+)?");
    private static final Pattern INDEX = Pattern.compile("\\d{1,9}(\\.0*)?");
    /** How tables write a missing value, lower-cased: an empty field, pandas' and R's NA and NaN, SQL's NULL, a "?". */
    private static final java.util.Set<String> MISSING = java.util.Set.of("", "na", "n/a", "nan", "null", "none", "?");

    /** Whether a field is a missing value ({@link #MISSING}): read as NaN, which a model's standardization fills. */
    static boolean missing(String v) { return v.length() <= 4 && MISSING.contains(v.toLowerCase(java.util.Locale.ROOT)); }

    /**
     * A table as read: its features row by row, its labels as written.
     *
     * @param source      the file, for messages
     * @param header      the column names, or null where the file has none
     * @param labelColumn  the label's column; -1: none
     * @param featureNames the names of the columns read as features, in the file's order; empty where there is no header
     * @param features     rows x features values
     * @param labels       one a row, as written (unquoted, trimmed)
     */
    public record Table(String source, List<String> header, int labelColumn, List<String> featureNames, float[] features, List<String> labels) {
        /** The number of rows. */
        public int rows() { return labels.size(); }
        /** The number of features a row. */
        public int width() { return rows() == 0 ? 0 : features.length / rows(); }
        /** The number of missing values (NaN) among the features. */
        public long missing() { return Dataset.missing(features); }
        /** The label column's name: its header's, or "column N" (from 1). */
        public String labelName() { return labelColumn < 0 ? "no column" : header != null ? "'" + header.get(labelColumn) + "'" : "column " + (labelColumn + 1); }
    }

    /** The data set {@code csv:PATH} names: a folder's train.csv and test.csv, or one file with a fifth of each class held out. */
    public static DataSplit load(Path path) throws IOException { return load(path, null); }

    /**
     * The data set {@code csv:PATH:LABEL} names: as {@link #load(Path)}, with the label in the column the header names
     * {@code label}, or in column {@code label} counted from 1 where it is a number.
     *
     * @param path  a CSV file or a folder of train.csv and test.csv
     * @param label the label's column, by name or number; null: the column named label, class or target, else the last
     * @return the split
     */
    public static DataSplit load(Path path, String label) throws IOException {
        if (Files.isDirectory(path)) {
            Table train = read(find(path, "train"), true, label, null), test = read(find(path, "test"), true, label, null);
            // Both with headers: the test set's columns by name, in whatever order its file has them; else by position.
            boolean named = !train.featureNames().isEmpty() && !test.featureNames().isEmpty();
            if (named && !test.featureNames().equals(train.featureNames()))
                test = new Table(test.source(), test.header(), test.labelColumn(), train.featureNames(),
                        DataSplit.select(test.features(), test.width(), DataSplit.columns(test.source(), test.featureNames(), train.featureNames())), test.labels());
            else if (!named && (test.width() != train.width() || test.labelColumn() != train.labelColumn()))
                throw new DataFormatException(test.source() + ": " + (test.width() + 1) + " columns with the label in " + test.labelName() + ", but " + train.source()
                        + " has " + (train.width() + 1) + " with the label in " + train.labelName());
            return split(train, test);
        }
        if (!Files.exists(path)) throw new NoSuchFileException(path.toString(), null, "CSV file not found (expected FILE.csv, or a folder with train.csv and test.csv)");
        Table all = read(path, true, label, null);
        if (all.rows() < 2) throw new DataFormatException(path + ": " + all.rows() + " row; a test set is held out of one file, so it needs at least 2 (or give a folder with train.csv and test.csv)");
        return split(all, null);
    }

    /** train.csv (or train.csv.gz) in {@code dir}. */
    private static Path find(Path dir, String stem) throws NoSuchFileException {
        for (String name : List.of(stem + ".csv", stem + ".csv.gz")) if (Files.exists(dir.resolve(name))) return dir.resolve(name);
        throw new NoSuchFileException(dir.resolve(stem + ".csv").toString(), null, "file not found (csv:DIR takes train.csv and test.csv there)");
    }

    /**
     * The split of a training and a test table, or of one table (test null) whose test set is a fifth of each class
     * ({@link #stratified}). Labels become indices over both, so that a class has one index in either set.
     */
    private static DataSplit split(Table train, Table test) throws DataFormatException {
        List<String> all = new ArrayList<>(train.labels());
        if (test != null) all.addAll(test.labels());
        boolean indices = all.stream().allMatch(l -> INDEX.matcher(l).matches());
        List<String> names;
        if (indices) {
            int classes = 1 + all.stream().mapToInt(l -> (int) Double.parseDouble(l)).max().orElse(0);
            if (classes > NpyFolder.MAX_CLASSES)
                throw new DataFormatException(train.source() + ": label " + (classes - 1) + " in " + train.labelName() + "; class indices run 0.." + (NpyFolder.MAX_CLASSES - 1));
            names = DataSplit.indexNames(classes);
        } else {
            names = List.copyOf(new TreeSet<>(all));
            if (names.size() > NpyFolder.MAX_CLASSES)
                throw new DataFormatException(train.source() + ": " + names.size() + " different labels in " + train.labelName() + "; at most " + NpyFolder.MAX_CLASSES
                        + " classes (is it the label column?)");
        }
        int[] shape = {train.width()};
        String labelled = "labels in " + train.labelName();
        Dataset trainSet = dataset(train.source() + " train (" + labelled + ")", train, shape, names, indices);
        if (test != null) return new DataSplit(trainSet, dataset(test.source() + " test", test, shape, names, indices), 1f, names, 0f, train.featureNames());
        int[][] parts = stratified(trainSet.labels(), names.size());
        return new DataSplit(trainSet.subset(train.source() + " train (" + parts[0].length + " of " + train.rows() + " rows, " + labelled + ")", parts[0]),
                trainSet.subset(train.source() + " test (" + parts[1].length + " rows held out, a fifth of each class)", parts[1]), 1f, names, 0f, train.featureNames());
    }

    /**
     * One file's rows as {training rows, test rows}: each class holds out its own fifth (rounded; one at least where it
     * has two rows or more, none of a single row), the rows drawn in the order of a permutation with a fixed seed, so
     * that a small class is in the test set in proportion rather than by chance. Where every class has one row, the
     * permutation's first row is the test set. Two rows or more: both parts hold one at least.
     */
    static int[][] stratified(float[] labels, int classes) {
        int[] count = new int[classes], held = new int[classes];
        for (float l : labels) count[(int) l]++;
        int[] order = Batches.permutation(labels.length, new java.util.SplittableRandom(0xC5FL));
        int[] quota = new int[classes];
        int total = 0;
        for (int c = 0; c < classes; c++) total += quota[c] = count[c] < 2 ? 0 : Math.max(1, (int) Math.round(TEST_SHARE * count[c]));
        if (total == 0) { quota[(int) labels[order[0]]] = 1; total = 1; }
        int[] test = new int[total], train = new int[labels.length - total];
        int t = 0, k = 0;
        for (int i : order) {
            int c = (int) labels[i];
            if (held[c] < quota[c]) { held[c]++; test[t++] = i; }
            else train[k++] = i;
        }
        return new int[][]{train, test};
    }

    private static Dataset dataset(String name, Table t, int[] shape, List<String> names, boolean indices) {
        float[] labels = new float[t.rows()];
        for (int i = 0; i < labels.length; i++) {
            String l = t.labels().get(i);
            labels[i] = indices ? (float) (int) Double.parseDouble(l) : java.util.Collections.binarySearch(names, l);
        }
        return new Dataset(name, shape, names.size(), t.features(), labels);
    }

    /**
     * A table of numbers, with or without a label column: a data set's ({@code labelled}), or the inputs {@code predict}
     * classifies, where a column the header names as a label is left out and every other field is a feature.
     *
     * @param file     a CSV file, gzipped or not
     * @param labelled whether the table must have a label column (the last, unless the header names one)
     * @return its rows
     */
    public static Table read(Path file, boolean labelled) throws IOException { return read(file, labelled, null, null); }

    /**
     * The inputs of a model that names its features (one trained on a table with a header): where the file has a header,
     * only the columns {@code features} names are read (in the file's order: {@link DataSplit#columns} puts them in the
     * model's), so that its other columns (an id, the label) need not be numbers; without a header, every column.
     *
     * @param file     a CSV file, gzipped or not
     * @param features the model's feature names
     * @return its rows
     */
    public static Table read(Path file, List<String> features) throws IOException { return read(file, false, null, features); }

    private static Table read(Path file, boolean labelled, String label, List<String> only) throws IOException {
        Files2.requireFile(file, "a CSV file");
        var decoder = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        java.util.NavigableSet<Integer> text = new java.util.TreeSet<>(); // the columns found to hold text: read again as categories
        while (true) {
            try (BufferedReader in = new BufferedReader(new InputStreamReader(Files2.open(file), decoder))) {
                return parse(in, file.toString(), labelled, label, only, text);
            } catch (CharacterCodingException e) {
                throw new DataFormatException(file + ": not UTF-8 text (" + e.getMessage() + "); expected a CSV file");
            } catch (TextFound found) { // rare, and at most once a column: cheaper than keeping every field's text
                text.addAll(found.columns);
            }
        }
    }

    /** Thrown where a row shows feature columns of text not yet known to be: the file is read again with them as categories. */
    private static final class TextFound extends RuntimeException {
        final java.util.Set<Integer> columns;

        TextFound(java.util.Set<Integer> columns) {
            super(null, null, false, false);
            this.columns = columns;
        }
    }

    /** A text column with more distinct values than this, and than half the rows, names rows (an id, a name), not categories. */
    static final int MAX_CATEGORIES = 20;

    /**
     * The name of a category's feature: a text column's value as its own 0/1 feature, {@code Sex=female}. A model trained on
     * the table names it so, and {@link DataSplit#columns}, {@code predict} and a service map a column's value onto it.
     */
    public static String category(String column, String value) { return column + "=" + value; }

    /**
     * Values appended one by one, never more than an array or this JVM holds: a table too large is refused at the line
     * that would outgrow it, in one line, not by an OutOfMemoryError (growing holds the old array and the new at once).
     */
    private static final class Values {
        float[] a = new float[1024];
        int n;

        void add(float v, String source, int lineNo) throws DataFormatException {
            if (n == a.length) {
                long grown = Math.min(Integer.MAX_VALUE - 8, 2L * n), room = Runtime.getRuntime().maxMemory() / 2 / (3L * Float.BYTES);
                if (n >= Integer.MAX_VALUE - 8 || grown > room)
                    throw new DataFormatException(source + ": more than " + n + " values by line " + lineNo + ", more than this JVM can hold (" + room
                            + " at most; raise -Xmx through PREDCODE_JAVA_OPTS, or give the data as .npy files)");
                a = Arrays.copyOf(a, (int) grown);
            }
            a[n++] = v;
        }
    }

    private static Table parse(BufferedReader in, String source, boolean labelled, String label, List<String> only, java.util.NavigableSet<Integer> text) throws IOException {
        List<String> first = null, header = null;
        int firstLine = 0, lineNo = 0, labelColumn = -1, rows = 0;
        boolean[] keep = null; // the columns read as features
        Values features = new Values(), codes = new Values(); // the numbers; each text column's category numbers (-1: missing)
        List<java.util.Map<String, Integer>> categories = new ArrayList<>(); // per text column, in order: value -> its number
        for (int i = 0; i < text.size(); i++) categories.add(new java.util.HashMap<>());
        List<String> labels = labelled ? new ArrayList<>() : null; // an unlabelled read's label column is not read
        for (String line; (line = in.readLine()) != null; ) {
            lineNo++;
            if (lineNo == 1 && line.startsWith("\uFEFF")) line = line.substring(1);
            if (line.isBlank()) continue;
            List<String> fields = fields(line, source, lineNo);
            if (first == null) { // kept until the next row says whether it is a header
                String separator = fields.size() == 1 ? otherSeparator(fields.getFirst()) : null;
                if (separator != null)
                    throw new DataFormatException(source + ": line " + lineNo + " is one field with " + separator + " in it; fields are separated by commas: save the table as CSV with commas and decimal points");
                first = fields;
                firstLine = lineNo;
                continue;
            }
            if (fields.size() != first.size())
                throw new DataFormatException(source + ": line " + lineNo + " has " + fields.size() + " fields, but line " + firstLine + " has " + first.size());
            if (rows == 0 && header == null) {
                if (isHeader(first, fields)) header = named(first, source);
                labelColumn = labelColumn(header, first.size(), labelled, source, label);
                keep = kept(header, first.size(), labelColumn, only);
                if (only != null && header != null) {
                    try { // every column the model takes is there: the refusal DataSplit.withFeatures gives, as a file's
                        List<String> names = header; // a category's name is there where its column is
                        DataSplit.columns(source, names, only.stream().filter(f -> names.contains(f) || categoryColumn(f, names) == null).toList());
                    } catch (IllegalArgumentException e) {
                        throw new DataFormatException(e.getMessage());
                    }
                    for (int c = 0; c < header.size(); c++) // a column the model takes as categories
                        if (keep[c] && !only.contains(header.get(c)) && text.add(c)) categories.add(text.headSet(c).size(), new java.util.HashMap<>());
                }
                if (header == null) { row(first, firstLine, source, null, labelColumn, keep, features, labels, text, codes, categories, false); rows++; }
            }
            row(fields, lineNo, source, header, labelColumn, keep, features, labels, text, codes, categories, header != null && only == null);
            rows++;
        }
        if (first == null) throw new DataFormatException(source + ": no rows; expected a CSV table of features" + (labelled ? " and a label" : ""));
        if (rows == 0) { // a single row: a header alone where it holds no number, else a table of one row
            if (first.stream().noneMatch(v -> NUMBER.matcher(v).matches())) throw new DataFormatException(source + ": a header and no rows");
            labelColumn = labelColumn(null, first.size(), labelled, source, label);
            keep = kept(null, first.size(), labelColumn, null);
            row(first, firstLine, source, null, labelColumn, keep, features, labels, text, codes, categories, false);
            rows++;
        }
        if (features.n == 0 && text.isEmpty()) throw new DataFormatException(source + ": no feature columns; expected numbers beside the label");
        List<String> names = new ArrayList<>();
        for (int c = 0; header != null && c < header.size(); c++) if (keep[c] && !text.contains(c)) names.add(header.get(c));
        List<String> rowLabels = labelled ? labels : java.util.Collections.nCopies(rows, "");
        if (text.isEmpty()) return new Table(source, header, labelColumn, names, Arrays.copyOf(features.a, features.n), rowLabels);
        return withCategories(source, header, labelColumn, keep, text, categories, features, codes, rows, rowLabels, only == null);
    }

    /**
     * The table with each text column as one 0/1 feature per category ({@link #category}, sorted), in the file's column
     * order; a missing value is 0 in each. Where {@code identifiers} are refused (a training set's own categories), a
     * column of more than {@link #MAX_CATEGORIES} values and more than half the rows is named, with every other such.
     */
    private static Table withCategories(String source, List<String> header, int labelColumn, boolean[] keep, java.util.Set<Integer> text,
                                        List<java.util.Map<String, Integer>> categories, Values numbers, Values codes, int rows, List<String> labels,
                                        boolean identifiers) throws DataFormatException {
        Integer[] textColumns = text.toArray(new Integer[0]);
        int[] textIndex = new int[keep.length]; // per column: its place among the text columns, or -1
        Arrays.fill(textIndex, -1);
        for (int t = 0; t < textColumns.length; t++) textIndex[textColumns[t]] = t;
        List<String> ids = new ArrayList<>();
        List<List<String>> sorted = new ArrayList<>();
        int[][] rank = new int[textColumns.length][]; // per text column: a value's number -> its place among the sorted
        for (int t = 0; t < textColumns.length; t++) {
            java.util.Map<String, Integer> seen = categories.get(t);
            List<String> values = new ArrayList<>(new TreeSet<>(seen.keySet()));
            if (identifiers && values.size() > MAX_CATEGORIES && 2 * values.size() > rows)
                ids.add("'" + shorten(header.get(textColumns[t])) + "' (" + values.size() + " different values in " + rows + " rows)");
            sorted.add(values);
            rank[t] = new int[values.size()];
            for (int k = 0; k < values.size(); k++) rank[t][seen.get(values.get(k))] = k;
        }
        if (!ids.isEmpty())
            throw new DataFormatException(source + ": column" + (ids.size() == 1 ? " " : "s ") + String.join(", ", ids) + (ids.size() == 1 ? " holds" : " hold")
                    + " text of too many values to be categories (an id or a name, or numbers written with units?); remove " + (ids.size() == 1 ? "it" : "them")
                    + " from the table or write plain numbers (pandas: df.drop(columns=[...]).to_csv(path, index=False))");
        List<String> names = new ArrayList<>();
        int width = 0;
        for (int c = 0; c < keep.length; c++) {
            if (!keep[c]) continue;
            int t = textIndex[c];
            if (t < 0) { names.add(header.get(c)); width++; }
            else for (String v : sorted.get(t)) { names.add(category(header.get(c), v)); width++; }
        }
        int numeric = rows == 0 ? 0 : numbers.n / rows;
        float[] x = new float[rows * width];
        for (int i = 0, at = 0; i < rows; i++) {
            int n = 0;
            for (int c = 0; c < keep.length; c++) {
                if (!keep[c]) continue;
                int t = textIndex[c];
                if (t < 0) x[at++] = numbers.a[i * numeric + n++];
                else {
                    int code = (int) codes.a[i * textColumns.length + t];
                    if (code >= 0) x[at + rank[t][code]] = 1f;
                    at += sorted.get(t).size();
                }
            }
        }
        return new Table(source, header, labelColumn, names, x, labels);
    }

    /** The header's column whose categories {@code feature} names one of ({@link #category}), or null. */
    public static String categoryColumn(String feature, List<String> columns) {
        for (int p = feature.indexOf('='); p >= 0; p = feature.indexOf('=', p + 1))
            if (columns.contains(feature.substring(0, p))) return feature.substring(0, p);
        return null;
    }

    /**
     * The columns read as features: all but the label's, and of a header's only those {@code only} names where it is given
     * (by name, or by its categories' names).
     */
    private static boolean[] kept(List<String> header, int columns, int labelColumn, List<String> only) {
        boolean[] keep = new boolean[columns];
        for (int c = 0; c < columns; c++) {
            String name = header == null ? null : header.get(c);
            keep[c] = c != labelColumn && (only == null || header == null || only.contains(name) || only.stream().anyMatch(f -> name.equals(categoryColumn(f, header))));
        }
        return keep;
    }

    /**
     * Appends a row's features (the columns {@code keep} marks: numbers, or the category numbers of the {@code text}
     * columns) and its label. Where {@code discover}, a feature column of text not yet in {@code text} is thrown
     * ({@link TextFound}), with every other in the row, for the file to be read again.
     */
    private static void row(List<String> fields, int lineNo, String source, List<String> header, int labelColumn, boolean[] keep, Values features, List<String> labels,
                            java.util.Set<Integer> text, Values codes, List<java.util.Map<String, Integer>> categories, boolean discover) throws DataFormatException {
        java.util.Set<Integer> found = null;
        int t = 0;
        for (int c = 0; c < fields.size(); c++) {
            String v = fields.get(c);
            if (keep[c] && text.contains(c)) {
                java.util.Map<String, Integer> seen = categories.get(t++);
                codes.add(missing(v) ? -1 : seen.computeIfAbsent(v, k -> seen.size()), source, lineNo);
            } else if (keep[c]) {
                // Text, but not a number with another separator in it (a comma-decimal locale's export): that is refused.
                if (discover && Float.isNaN(plainDecimal(v)) && !missing(v) && !NUMBER.matcher(v).matches() && otherSeparator(v) == null) {
                    if (found == null) found = new java.util.TreeSet<>();
                    found.add(c);
                } else features.add(number(v, source, lineNo, header, c, header != null && !discover), source, lineNo);
            }
            else if (c != labelColumn || labels == null) continue; // a column the model does not take, or a label not wanted: not read
            else if (v.isEmpty()) throw new DataFormatException(source + ": line " + lineNo + ", " + column(header, c) + ": empty label");
            else labels.add(v);
        }
        if (found != null) throw new TextFound(found);
    }

    /** A feature's number; {@code modelsNumbers}: a model's column read by name, which it took as numbers when it trained. */
    private static float number(String v, String source, int lineNo, List<String> header, int c, boolean modelsNumbers) throws DataFormatException {
        float plain = plainDecimal(v);
        if (plain == plain) return plain;
        if (missing(v)) return Float.NaN;
        if (!NUMBER.matcher(v).matches()) {
            String separator = otherSeparator(v);
            throw new DataFormatException(source + ": line " + lineNo + ", " + column(header, c) + ": '" + shorten(v) + "' is not a number"
                    + (separator != null ? "; fields are separated by commas, and this line's by " + separator + ": save the table as CSV with commas and decimal points"
                    : modelsNumbers ? "; the model took this column as numbers when it trained (a number, or a gap: empty, NA, NaN, null or ?)"
                    : "; expected a finite number (a feature; text where a header names the columns), or the label's column (named label, class or target in a"
                    + " header, or csv:FILE:COLUMN)"));
        }
        float f = Float.parseFloat(v);
        if (!Float.isFinite(f))
            throw new DataFormatException(source + ": line " + lineNo + ", " + column(header, c) + ": " + shorten(v) + " is beyond float32's range (about 3.4e38)");
        return f;
    }

    /** A spreadsheet's export in a comma-decimal locale separates fields by semicolons (or tabs): said, not guessed at. */
    private static String otherSeparator(String field) {
        return field.indexOf(';') >= 0 ? "semicolons" : field.indexOf('\t') >= 0 ? "tabs" : null;
    }

    /** 10^k as floats, each exact (5^10 fits a float's 24 bits). */
    private static final float[] POW10 = {1f, 1e1f, 1e2f, 1e3f, 1e4f, 1e5f, 1e6f, 1e7f, 1e8f, 1e9f, 1e10f};

    /**
     * The float a plain decimal writes ("255", "-0.2776", "5."), as {@link Float#parseFloat} reads it, or NaN where the
     * text is not one of those or too long for this way: its digits as an integer m at most 2^24 and at most 10 decimals,
     * m and 10^k are exact floats, and IEEE division rounds their quotient correctly, so the result is the decimal's
     * correctly rounded float. Most of a table's numbers are such; the rest take the slower general path.
     */
    static float plainDecimal(String v) {
        int i = 0, n = v.length(), decimals = 0;
        if (n == 0) return Float.NaN;
        boolean negative = v.charAt(0) == '-', point = false, digit = false;
        if (negative || v.charAt(0) == '+') i++;
        long m = 0;
        for (; i < n; i++) {
            char ch = v.charAt(i);
            if (ch >= '0' && ch <= '9') {
                m = m * 10 + (ch - '0');
                if (m > 1 << 24) return Float.NaN;
                digit = true;
                if (point) decimals++;
            } else if (ch == '.' && !point) point = true;
            else return Float.NaN;
        }
        if (!digit || decimals > 10) return Float.NaN;
        float f = decimals == 0 ? (float) m : (float) m / POW10[decimals];
        return negative ? -f : f;
    }

    private static String column(List<String> header, int c) {
        return "column " + (c + 1) + (header != null ? " ('" + shorten(header.get(c)) + "')" : "");
    }

    private static String shorten(String s) { return s.length() <= 40 ? s : s.substring(0, 40) + "..."; }

    /**
     * A header's names, each given and given once: columns are matched by them. An unnamed column is most often an index
     * pandas wrote ({@code to_csv} without {@code index=False}), which would train as a feature.
     */
    private static List<String> named(List<String> header, String source) throws DataFormatException {
        for (int c = 0; c < header.size(); c++) {
            if (header.get(c).isEmpty())
                throw new DataFormatException(source + ": column " + (c + 1) + " has no name in the header (an index pandas wrote? to_csv(..., index=False) leaves it out)");
            int again = header.subList(c + 1, header.size()).indexOf(header.get(c));
            if (again >= 0)
                throw new DataFormatException(source + ": columns " + (c + 1) + " and " + (c + 2 + again) + " are both named '" + shorten(header.get(c)) + "' in the header");
        }
        return header;
    }

    /**
     * A header names at least one column whose next row holds a number there; or the two rows hold no number at all: a
     * table of text alone can only be read with a header (its columns are categories, which a header names).
     */
    private static boolean isHeader(List<String> first, List<String> second) {
        boolean numbers = false;
        for (int c = 0; c < first.size(); c++) {
            boolean below = NUMBER.matcher(second.get(c)).matches(), named = !NUMBER.matcher(first.get(c)).matches();
            if (named && below) return true;
            numbers |= below || !named;
        }
        return !numbers;
    }

    /**
     * The label's column: the one {@code label} names or numbers where it is given; else the one the header names label,
     * class or target; else the last, where the table must have one ({@code labelled}); else none (-1).
     */
    private static int labelColumn(List<String> header, int columns, boolean labelled, String source, String label) throws DataFormatException {
        if (label != null) {
            if (label.matches("\\d{1,9}")) {
                int c = Integer.parseInt(label);
                if (c < 1 || c > columns) throw new DataFormatException(source + ": label column " + c + ", but the table has " + columns + " columns (counted from 1)");
                return c - 1;
            }
            if (header == null) throw new DataFormatException(source + ": no header to find the label column '" + shorten(label) + "' in; give its number instead (csv:FILE:N, from 1)");
            int c = header.indexOf(label);
            if (c < 0) throw new DataFormatException(source + ": no column '" + shorten(label) + "' in the header (" + shorten(String.join(", ", header)) + ")");
            return c;
        }
        if (header != null)
            for (String name : LABEL_NAMES)
                for (int c = 0; c < header.size(); c++) if (header.get(c).toLowerCase(Locale.ROOT).equals(name)) return c;
        if (labelled && columns < 2) throw new DataFormatException(source + ": one column; expected features and a label in each row");
        return labelled ? columns - 1 : -1;
    }

    /** The fields of one line: commas between them, quotes around any that hold a comma or a quote (doubled). */
    static List<String> fields(String line, String source, int lineNo) throws DataFormatException {
        List<String> out = new ArrayList<>();
        StringBuilder field = new StringBuilder();
        int i = 0, n = line.length();
        while (true) {
            while (i < n && line.charAt(i) == ' ') i++;
            if (i < n && line.charAt(i) == '"') {
                i++;
                while (true) {
                    if (i >= n) throw new DataFormatException(source + ": line " + lineNo + ": a quoted field is not closed by the end of the line");
                    char ch = line.charAt(i++);
                    if (ch != '"') field.append(ch);
                    else if (i < n && line.charAt(i) == '"') { field.append('"'); i++; }
                    else break;
                }
                while (i < n && line.charAt(i) == ' ') i++;
                if (i < n && line.charAt(i) != ',')
                    throw new DataFormatException(source + ": line " + lineNo + ", column " + (out.size() + 1) + ": text after a quoted field's closing quote");
                out.add(field.toString());
            } else {
                int end = line.indexOf(',', i);
                if (end < 0) end = n;
                String raw = line.substring(i, end).strip();
                if (raw.indexOf('"') >= 0)
                    throw new DataFormatException(source + ": line " + lineNo + ", column " + (out.size() + 1) + ": a quote inside an unquoted field; quote the field and double the quote");
                out.add(raw);
                i = end;
            }
            field.setLength(0);
            if (i >= n) return out;
            i++; // the comma
        }
    }
}
