package io.predcode.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.zip.GZIPOutputStream;

import static org.junit.jupiter.api.Assertions.*;

/** CSV tables ({@code --data csv:...}, {@code predict --input X.csv}): what is read, and what is refused in one line. */
class CsvTest {
    @TempDir Path tmp;

    private Path write(String name, String text) throws IOException {
        Path f = tmp.resolve(name);
        Files.writeString(f, text, StandardCharsets.UTF_8);
        return f;
    }

    @Test void aHeaderNamesTheLabelAnywhereAndNamesBecomeSortedClasses() throws IOException {
        // The label column first, as Kaggle's MNIST CSV has it; quoted fields, spaces, CRLF, a BOM, blank lines.
        Path f = write("t.csv", "\uFEFFclass,a,\"b, the second\"\r\n\"virginica\", 1.5 ,-2e1\r\n\r\nsetosa,+.25,3\r\n\"versi\"\"color\",7,1E-3\r\nsetosa,0,0\r\n\n");
        Csv.Table t = Csv.read(f, true);
        assertEquals(List.of("class", "a", "b, the second"), t.header());
        assertEquals(0, t.labelColumn());
        assertEquals(List.of("virginica", "setosa", "versi\"color", "setosa"), t.labels());
        assertArrayEquals(new float[]{1.5f, -20f, 0.25f, 3f, 7f, 1e-3f, 0f, 0f}, t.features());
        DataSplit d = Csv.load(f);
        assertEquals(List.of("setosa", "versi\"color", "virginica"), d.classNames(), "sorted: indices that do not depend on the rows' order");
        assertArrayEquals(new int[]{2}, d.sampleShape());
        assertEquals(3, d.train().size());
        assertEquals(1, d.test().size(), "a fifth of 4 rows, rounded, at least one");
        assertTrue(d.train().name().contains("labels in 'class'"), d.train().name());
    }

    @Test void withoutAHeaderTheLastColumnIsTheLabelAndWholeNumbersAreIndices() throws IOException {
        Path dir = Files.createDirectory(tmp.resolve("d"));
        Files.writeString(dir.resolve("train.csv"), "0.5,1,2\n1.5,2,0\n2.5,3,1.0\n");
        try (var out = new GZIPOutputStream(Files.newOutputStream(dir.resolve("test.csv.gz")))) { out.write("9,9,4\n".getBytes(StandardCharsets.US_ASCII)); }
        DataSplit d = Csv.load(dir);
        assertNull(Csv.read(dir.resolve("train.csv"), true).header());
        assertEquals(5, d.classes(), "the largest index in either file, plus one");
        assertEquals(List.of("0", "1", "2", "3", "4"), d.classNames());
        assertArrayEquals(new float[]{2, 0, 1}, d.train().labels());
        assertArrayEquals(new float[]{4}, d.test().labels());
        assertArrayEquals(new float[]{0.5f, 1, 1.5f, 2, 2.5f, 3}, d.train().images());
    }

    @Test void oneFileHoldsOutTheSameFifthWhateverElse() throws IOException {
        StringBuilder b = new StringBuilder("x,label\n");
        for (int i = 0; i < 50; i++) b.append(i).append(',').append(i % 2).append('\n');
        Path f = write("fifty.csv", b.toString());
        DataSplit one = Csv.load(f), two = Csv.load(f);
        assertEquals(40, one.train().size());
        assertEquals(10, one.test().size());
        assertArrayEquals(one.test().images(), two.test().images(), "a fixed seed: the same test set every time");
        java.util.Set<Float> seen = new java.util.HashSet<>();
        for (float v : one.train().images()) seen.add(v);
        for (float v : one.test().images()) assertTrue(seen.add(v), "a row in both sets: " + v);
        assertEquals(50, seen.size());
        // Stratified: a class of 5 rows among 100 holds out 1, the other 19; singletons stay in training.
        StringBuilder imbalanced = new StringBuilder("x,label\n");
        for (int i = 0; i < 100; i++) imbalanced.append(i).append(',').append(i < 5 ? "rare" : "common").append('\n');
        imbalanced.append("100,alone\n");
        DataSplit d = Csv.load(write("imbalanced.csv", imbalanced.toString()));
        assertEquals(List.of("alone", "common", "rare"), d.classNames());
        int[] perClass = new int[3];
        for (float l : d.test().labels()) perClass[(int) l]++;
        assertArrayEquals(new int[]{0, 19, 1}, perClass);
        assertEquals(81, d.train().size());
        int[][] lone = Csv.stratified(new float[]{0, 1, 2}, 3);
        assertEquals(1, lone[1].length, "every class a single row: one row held out all the same");
        assertEquals(2, lone[0].length);
    }

    @Test void inputsToClassifyMayCarryTheLabelColumn() throws IOException {
        Csv.Table t = Csv.read(write("in.csv", "a,b,target\n1,2,x\n3,4,y\n"), false);
        assertArrayEquals(new float[]{1, 2, 3, 4}, t.features(), "the column the header names target is left out");
        assertEquals(2, t.rows());
        // A model's features by name: the other columns need not be numbers (a name, a label of another column's name).
        Csv.Table only = Csv.read(write("named.csv", "id,name,b,a,diagnosis\n1,bob,2,3,M\n2,\"ann\",4,5,\n"), List.of("a", "b"));
        assertEquals(List.of("b", "a"), only.featureNames(), "in the file's order");
        assertArrayEquals(new float[]{2, 3, 4, 5}, only.features());
        IOException missing = assertThrows(IOException.class, () -> Csv.read(write("other.csv", "x,y\n1,2\n"), List.of("a", "b")));
        assertTrue(missing.getMessage().endsWith("other.csv: no column 'a', a feature of the model (it takes a, b)"), missing.getMessage());
        Csv.Table plain = Csv.read(write("plain.csv", "1,2,3\n"), false);
        assertEquals(3, plain.width(), "no header: every field a feature");
    }

    @Test void badTablesAreOneLineNamingFileLineAndColumn() throws IOException {
        String[][] cases = {
                {"", "no rows"},
                {"a,b,label\n", "a header and no rows"},
                {"a,b,label\n1,2,x\n3,x\n", "line 3 has 2 fields, but line 1 has 3"},
                {"a,b,label\n1,oops,x\n", "line 2, column 2 ('b'): 'oops' is not a number"},
                {"a,b,label\n1,NaN,x\n", "'NaN' is not a number"},
                {"a,b,label\n1,0x10,x\n", "'0x10' is not a number"},
                {"a,b,label\n1,,x\n", "column 2 ('b'): empty"},
                {"a,b,label\n1,2,\n", "empty label"},
                {"a,b,label\n1,1e39,x\n", "beyond float32's range"},
                {"a,b,label\n1,\"2,x\n", "a quoted field is not closed"},
                {"a,b,label\n1,\"2\"3,x\n", "text after a quoted field's closing quote"},
                {"a,b,label\n1,2\"3,x\n", "a quote inside an unquoted field"},
                {"label\n1\n2\n", "no feature columns"},
                {"1\n2\n", "one column"},
                {",a,label\n0,1,x\n1,2,y\n", "column 1 has no name in the header (an index pandas wrote?"},
                {"a,b,a,label\n0,1,2,x\n", "columns 1 and 3 are both named 'a'"},
                {"a;b;label\n1;2;x\n", "line 1 is one field with semicolons in it; fields are separated by commas: save the table as CSV with commas"},
                {"a\tb\tlabel\n1\t2\tx\n", "line 1 is one field with tabs in it"},
                {"a,b,label\n1,2;5,x\n", "line 2, column 2 ('b'): '2;5' is not a number; fields are separated by commas, and this line's by semicolons"},
                {"1,2\n3\n", "line 2 has 1 fields, but line 1 has 2"},
        };
        for (String[] c : cases) {
            Path f = write("bad.csv", c[0]);
            Exception e = assertThrows(Exception.class, () -> Csv.load(f), c[0]);
            assertTrue(e instanceof IOException || e instanceof IllegalArgumentException, e.toString());
            assertTrue(e.getMessage().contains(f.toString()) && e.getMessage().contains(c[1]) && !e.getMessage().contains("\n"), c[0] + " -> " + e.getMessage());
        }
        Files.write(tmp.resolve("latin1.csv"), new byte[]{'a', ',', 'l', '\n', '1', ',', (byte) 0xE9, '\n'});
        IOException e = assertThrows(IOException.class, () -> Csv.load(tmp.resolve("latin1.csv")));
        assertTrue(e.getMessage().contains("not UTF-8"), e.getMessage());
        // One row cannot be split into a training and a test set; a folder needs both files, alike.
        e = assertThrows(IOException.class, () -> Csv.load(write("one.csv", "1,2\n")));
        assertTrue(e.getMessage().contains("needs at least 2"), e.getMessage());
        Path dir = Files.createDirectory(tmp.resolve("pair"));
        Files.writeString(dir.resolve("train.csv"), "1,2,0\n");
        e = assertThrows(IOException.class, () -> Csv.load(dir));
        assertTrue(e.getMessage().contains("test.csv") && e.getMessage().contains("file not found"), e.getMessage());
        Files.writeString(dir.resolve("test.csv"), "1,0\n");
        e = assertThrows(IOException.class, () -> Csv.load(dir));
        assertTrue(e.getMessage().contains("2 columns") && e.getMessage().contains("has 3"), e.getMessage());
    }

    @Test void namedClassesAreRelabelledByAModelsNames() throws IOException {
        DataSplit d = Csv.load(write("two.csv", "x,label\n1,b\n2,c\n3,b\n4,c\n5,b\n"));
        assertEquals(List.of("b", "c"), d.classNames());
        DataSplit r = d.relabelled(List.of("a", "b", "c"));
        assertEquals(3, r.classes());
        for (int i = 0; i < d.train().size(); i++) assertEquals(d.train().labels()[i] + 1, r.train().labels()[i]);
        assertArrayEquals(d.test().images(), r.test().images());
        assertSame(d, d.relabelled(List.of("b", "c")));
        assertSame(d, d.relabelled(List.of()), "a model that records no names");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> d.relabelled(List.of("a", "b")));
        assertTrue(e.getMessage().contains("class 'c' is not one the model was trained on (a, b)"), e.getMessage());
        DataSplit indices = Csv.load(write("idx.csv", "1,0\n2,1\n3,1\n"));
        assertSame(indices, indices.relabelled(List.of("x", "y")), "classes named by their index keep their positions");
    }

    /** Columns by name: a folder's test.csv in another order, and a split given a model's features in another. */
    @Test void featuresAreMatchedByName() throws IOException {
        Path dir = Files.createDirectory(tmp.resolve("named"));
        Files.writeString(dir.resolve("train.csv"), "a,b,c,label\n1,2,3,x\n4,5,6,y\n");
        Files.writeString(dir.resolve("test.csv"), "label,c,id,a,b\ny,30,99,10,20\n");
        DataSplit d = Csv.load(dir);
        assertEquals(List.of("a", "b", "c"), d.featureNames());
        assertArrayEquals(new float[]{10, 20, 30}, d.test().images(), "the test file's columns taken by name; its extra one left out");
        DataSplit model = d.withFeatures(List.of("c", "a"));
        assertArrayEquals(new float[]{3, 1, 6, 4}, model.train().images());
        assertArrayEquals(new int[]{2}, model.sampleShape());
        assertEquals(List.of("c", "a"), model.featureNames());
        assertSame(d, d.withFeatures(List.of()), "a model that names no features");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> d.withFeatures(List.of("a", "z")));
        assertTrue(e.getMessage().contains("no column 'z', a feature of the model (it takes a, z)"), e.getMessage());
        Files.writeString(dir.resolve("test.csv"), "label,a,b,c\ny,10,20,30\n");
        assertArrayEquals(new float[]{10, 20, 30}, Csv.load(dir).test().images(), "the label in another column, the features in the same order");
        Files.writeString(dir.resolve("test.csv"), "label,c,a\ny,30,10\n");
        e = assertThrows(IllegalArgumentException.class, () -> Csv.load(dir));
        assertTrue(e.getMessage().contains("test.csv: no column 'b'"), e.getMessage());
        assertEquals(List.of(), Csv.load(write("bare.csv", "1,2,0\n3,4,1\n")).featureNames(), "no header, no names");
    }

    /** The fast path for plain decimals gives Float.parseFloat's bits, or steps aside: 300,000 drawn, edges included. */
    @Test void plainDecimalsReadAsParseFloatReadsThem() {
        java.util.SplittableRandom r = new java.util.SplittableRandom(23);
        List<String> edges = List.of("0", "-0", "+0", "0.0", "-0.0", ".5", "5.", "16777216", "16777217", "-16777216", "1677721.6", "0.0000000001",
                "0.00000000001", "1.0000000000", "1.00000000000", "9999999", "0.1", "0.2776", "255", "1001", "-.5", ".", "-", "+", "", "1..2", "1e3", "0x1", "NaN");
        int fast = 0;
        for (int k = 0; k < 300_000 + edges.size(); k++) {
            String v;
            if (k < edges.size()) v = edges.get(k);
            else {
                StringBuilder b = new StringBuilder(r.nextInt(8) == 0 ? "-" : r.nextInt(16) == 0 ? "+" : "");
                int whole = r.nextInt(9), frac = r.nextInt(4) == 0 ? -1 : r.nextInt(12);
                for (int i = 0; i < whole; i++) b.append((char) ('0' + r.nextInt(10)));
                if (frac >= 0) { b.append('.'); for (int i = 0; i < frac; i++) b.append((char) ('0' + r.nextInt(10))); }
                v = b.toString();
            }
            float got = Csv.plainDecimal(v);
            if (got != got) continue; // stepped aside: the general path reads it
            fast++;
            assertEquals(Float.floatToRawIntBits(Float.parseFloat(v)), Float.floatToRawIntBits(got), v);
        }
        assertTrue(fast > 100_000, "the fast path takes most plain decimals: " + fast);
        assertTrue(Float.isNaN(Csv.plainDecimal("16777217")) && Float.isNaN(Csv.plainDecimal("1e3")) && Float.isNaN(Csv.plainDecimal(".")), "outside it: the general path");
    }

    @Test void standardizationIsEachValuesMeanAndStd() throws IOException {
        Path dir = Files.createDirectory(tmp.resolve("std"));
        Files.writeString(dir.resolve("train.csv"), "a,b,c,label\n1,5,100,x\n3,5,300,y\n");
        Files.writeString(dir.resolve("test.csv"), "a,b,c,label\n0,0,0,x\n");
        float[][] s = Csv.load(dir).train().standardization();
        assertArrayEquals(new float[]{2, 5, 200}, s[0]);
        assertArrayEquals(new float[]{1, 1, 100}, s[1], "b is constant: std 1, not 0");
    }

    /** csv:FILE:COLUMN: the label where neither the header's usual names nor the last column put it. */
    @Test void theLabelColumnByNameOrNumber() throws IOException {
        Path f = write("titanic.csv", "Survived,Pclass,Age\n0,3,22\n1,1,38\n1,3,26\n");
        DataSplit d = DataSources.load("csv:" + f + ":Survived");
        assertEquals(List.of("Pclass", "Age"), d.featureNames());
        assertEquals(2, d.classes());
        assertTrue(d.train().name().contains("labels in 'Survived'"), d.train().name());
        DataSplit byNumber = DataSources.load("csv:" + f + ":1");
        assertArrayEquals(d.train().images(), byNumber.train().images());
        assertEquals(39, DataSources.load("csv:" + f).classes(), "without it, the last column: Age's 22, 38 and 26 as class indices");
        for (String[] bad : new String[][]{{":Died", "no column 'Died' in the header (Survived, Pclass, Age)"}, {":4", "label column 4, but the table has 3 columns"},
                {":0", "label column 0"}}) {
            IOException e = assertThrows(IOException.class, () -> DataSources.load("csv:" + f + bad[0]));
            assertTrue(e.getMessage().contains(bad[1]) && e.getMessage().contains(f.toString()), e.getMessage());
        }
        Path bare = write("bare.csv", "7,1,2\n3,4,5\n");
        IOException e = assertThrows(IOException.class, () -> DataSources.load("csv:" + bare + ":y"));
        assertTrue(e.getMessage().contains("no header to find the label column 'y' in; give its number"), e.getMessage());
        assertEquals(8, DataSources.load("csv:" + bare + ":1").classes(), "the first column's indices, 3 and 7");
    }

    @Test void aDataNameOfATableSaysCsv() throws IOException {
        Path f = write("t.csv", "1,2,0\n3,4,1\n");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> DataSources.load(f.toString()));
        assertTrue(e.getMessage().endsWith("that file is a table: --data csv:" + f), e.getMessage());
        assertEquals(2, DataSources.load("csv:" + f).classes());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> DataSources.load("csv:")).getMessage().contains("csv:FILE.csv"));
    }
}
