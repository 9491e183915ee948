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

    /**
     * Text columns become one 0/1 feature per category (sorted, named column=value); missing values (empty, NA, NaN,
     * null, ?) are NaN in a number's column and zeros in a category's. A model's features read from another table
     * take its categories by name: one it lacks is zeros, one the model lacks is left out.
     */
    @Test void textColumnsAreCategoriesAndMissingValuesAreNaN() throws IOException {
        Path f = write("people.csv", "age,sex,port,label\n22,male,S,0\n,female,C,1\n30,female,,1\nNA,male,Q,0\n41,male,?,1\n");
        Csv.Table t = Csv.read(f, true);
        assertEquals(List.of("age", "sex=female", "sex=male", "port=C", "port=Q", "port=S"), t.featureNames());
        float nan = Float.NaN;
        assertArrayEquals(new float[]{22, 0, 1, 0, 0, 1, nan, 1, 0, 1, 0, 0, 30, 1, 0, 0, 0, 0, nan, 0, 1, 0, 1, 0, 41, 0, 1, 0, 0, 0}, t.features());
        assertEquals(2, t.missing());
        // The model's features from a table whose sex column has a value it never saw and whose port column lacks C.
        Path other = write("new.csv", "port,id,sex,age\nS,7,other,50\nQ,8,female,null\n");
        List<String> model = t.featureNames();
        Csv.Table o = Csv.read(other, model);
        float[] x = DataSplit.select(o.features(), o.width(), DataSplit.columns(other.toString(), o.featureNames(), model));
        assertArrayEquals(new float[]{50, 0, 0, 0, 0, 1, nan, 1, 0, 0, 1, 0}, x);
        // A model's column of numbers holding text in a table it reads: it took that column as numbers.
        DataFormatException wrong = assertThrows(DataFormatException.class, () -> Csv.read(write("old.csv", "age,sex,port\nold,male,S\n"), model));
        assertTrue(wrong.getMessage().endsWith("old.csv: line 2, column 1 ('age'): 'old' is not a number; the model took this column as numbers when it trained"
                + " (a number, or a gap: empty, NA, NaN, null or ?)"), wrong.getMessage());
        // A folder whose test set lacks a category: the same features, that one zeros.
        Path dir = tmp.resolve("dir");
        Files.createDirectories(dir);
        Files.copy(f, dir.resolve("train.csv"));
        Files.writeString(dir.resolve("test.csv"), "sex,port,age,label\nmale,S,3,0\n");
        DataSplit d = Csv.load(dir);
        assertEquals(model, d.featureNames());
        assertArrayEquals(new float[]{3, 0, 1, 0, 0, 1}, d.test().images());
        // A table of text alone (R's Titanic as its passengers): its first row can only be a header.
        // Its column named Class is the passenger's: the label is named (csv:titanic.csv:Survived).
        DataSplit titanic = Csv.load(write("titanic.csv", "Class,Sex,Age,Survived\n3rd,Male,Child,No\nCrew,Female,Adult,Yes\n1st,Male,Adult,No\n2nd,Female,Child,Yes\n"), "Survived");
        assertEquals(List.of("Class=1st", "Class=2nd", "Class=3rd", "Class=Crew", "Sex=Female", "Sex=Male", "Age=Adult", "Age=Child"), titanic.featureNames());
        assertEquals(List.of("No", "Yes"), titanic.classNames());
        // A header is what names a text column: without one, text is refused as before.
        assertTrue(assertThrows(DataFormatException.class, () -> Csv.read(write("bare.csv", "1,2,x\n3,b,y\n"), true)).getMessage().contains("'b' is not a number"));
    }

    /** A text column of as many values as rows names them (an id, a name): refused, every such column in one line. */
    @Test void textOfTooManyValuesIsRefusedWithEverySuchColumnNamed() throws IOException {
        StringBuilder b = new StringBuilder("name,ticket,sex,age,label\n");
        for (int i = 0; i < 30; i++) b.append("person ").append(i).append(",T").append(i * 7).append(i % 2 == 0 ? ",male," : ",female,").append(20 + i).append(',').append(i % 2).append('\n');
        DataFormatException e = assertThrows(DataFormatException.class, () -> Csv.read(write("ids.csv", b.toString()), true));
        assertTrue(e.getMessage().endsWith("ids.csv: columns 'name' (30 different values in 30 rows), 'ticket' (30 different values in 30 rows) hold text of too many values"
                + " to be categories (an id or a name, or numbers written with units?); remove them from the table or write plain numbers (pandas: df.drop(columns=[...]).to_csv(path, index=False))"), e.getMessage());
    }

    @Test void badTablesAreOneLineNamingFileLineAndColumn() throws IOException {
        String[][] cases = {
                {"", "no rows"},
                {"a,b,label\n", "a header and no rows"},
                {"a,b,label\n1,2,x\n3,x\n", "line 3 has 2 fields, but line 1 has 3"},
                {"1,2,x\n3,oops,y\n", "line 2, column 2: 'oops' is not a number; expected a finite number (a feature; text where a header names the columns)"},
                {"1,2,x\n3,0x10,y\n", "'0x10' is not a number"},
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
