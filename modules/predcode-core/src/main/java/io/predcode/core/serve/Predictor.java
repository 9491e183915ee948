package io.predcode.core.serve;

import io.predcode.core.io.Checkpoint;
import io.predcode.core.nn.Block;
import io.predcode.core.nn.Model;
import io.predcode.core.nn.ModelSpec;
import io.predcode.core.nn.Parameter;
import io.predcode.spi.Backend;
import io.predcode.spi.Scope;
import io.predcode.spi.Tensor;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * Feedforward prediction for a service: thread-safe for any number of threads, from one shared copy
 * of the parameters, while a trainer keeps learning.
 *
 * <ul>
 * <li><b>Versions.</b> The predictor holds its own copy of the parameters, a <em>version</em>.
 *     {@link #publish} copies a model's current parameters into a new version and makes it current
 *     atomically. A prediction runs wholly on the version that was current when it started, never on
 *     a mix; a version is freed (or kept for reuse) when its last prediction finishes. The methods
 *     that write into a caller's buffer return the number of the version that answered.</li>
 * <li><b>Lanes.</b> Each running prediction takes a lane: the activations for one batch, sized to the
 *     largest batch the lane has seen, smaller batches running in views of it. Lanes are pooled, so
 *     after warm-up a call allocates nothing on the backend, whatever the mix of batch sizes.</li>
 * <li><b>Inputs</b> are raw values: the predictor applies the {@link Preprocessing} it was made with
 *     (a checkpoint carries it) on the backend.</li>
 * </ul>
 * On a backend that is not {@link Backend#isThreadSafe() thread-safe} (CUDA), calls take turns
 * ({@link Backend#beginTurn()}) with each other and with training on the same backend.
 */
public final class Predictor implements AutoCloseable {
    /** Spare versions kept for the next publishes (a publish then allocates nothing). */
    private static final int SPARE_VERSIONS = 2;
    /** View sets kept per lane, one per batch size below its capacity (Java objects only). */
    private static final int KEPT_VIEWS = 256;

    private final Backend be;
    /** What every version is a copy of: its spec, input shape and parameter names. */
    private final ModelSpec spec;
    private final int[] inputShape;
    private final java.util.Set<String> parameterNames;
    private final Preprocessing preprocessing;
    private final List<String> classNames;
    /** A table model's columns, in its inputs' order; empty where the checkpoint names none. */
    private final List<String> featureNames;
    private final int inputSize, outputSize;
    private final int[] outputShape;
    /** Held around every backend call when the backend is not thread-safe. */

    private final AtomicReference<Version> current = new AtomicReference<>();
    private final ConcurrentLinkedDeque<Version> spares = new ConcurrentLinkedDeque<>();
    /** Idle lanes. Slots, not a queue: returning a lane to a queue would allocate its node on every call. */
    private final AtomicReferenceArray<Lane> lanes = new AtomicReferenceArray<>(Math.max(16, 2 * Runtime.getRuntime().availableProcessors() + 8));
    private volatile boolean closed;
    private long versions;

    private Predictor(Model source, Preprocessing preprocessing, List<String> classNames) { this(source, preprocessing, classNames, List.of()); }

    private Predictor(Model source, Preprocessing preprocessing, List<String> classNames, List<String> featureNames) {
        this.be = source.backend();
        this.preprocessing = preprocessing == null ? Preprocessing.NONE : preprocessing;
        this.outputShape = source.activationShape(source.depth());
        this.inputSize = size(source.inputShape());
        this.outputSize = size(outputShape);
        if (classNames != null && !classNames.isEmpty() && (outputShape.length != 1 || classNames.size() != outputSize))
            throw new IllegalArgumentException("predictor: " + classNames.size() + " class names for a model output of shape " + Arrays.toString(outputShape));
        this.classNames = classNames == null ? List.of() : List.copyOf(classNames);
        if (!featureNames.isEmpty() && featureNames.size() != inputSize)
            throw new IllegalArgumentException("predictor: " + featureNames.size() + " feature names for a model input of " + inputSize + " values");
        this.featureNames = List.copyOf(featureNames);
        this.spec = source.spec();
        this.inputShape = source.inputShape();
        this.parameterNames = java.util.Set.copyOf(source.parameters().keySet());
        try {
            publish(source);
        } catch (RuntimeException e) {
            close(); // the version publish kept for reuse, which no caller could close
            throw e;
        }
    }

    /** A predictor serving a copy of {@code model}'s current parameters, with inputs used as given. */
    public static Predictor of(Model model) { return new Predictor(model, Preprocessing.NONE, null); }

    /** A predictor serving a copy of {@code model}'s current parameters; null {@code preprocessing} uses inputs as given, null {@code classNames} names none. */
    public static Predictor of(Model model, Preprocessing preprocessing, List<String> classNames) {
        return new Predictor(model, preprocessing, classNames);
    }

    /**
     * A predictor for a checkpoint (a run folder, or a checkpoint or model {@code .safetensors} file) on
     * {@code backend}, with the preprocessing and class names the checkpoint carries.
     */
    public static Predictor load(Path checkpoint, Backend backend) throws IOException {
        Path served = servedFile(checkpoint);
        boolean there = java.nio.file.Files.exists(served);
        Seen before = there ? identify(served) : null;
        // The file noted, as reload reads it: a folder's checkpoint.safetensors may still hold the save before its
        // model.safetensors (written first), which would be served while the newer file counted as seen.
        Checkpoint.Loaded c = Checkpoint.load(there ? served : checkpoint);
        try (Model m = c.model(backend)) {
            Predictor p = new Predictor(m, c.preprocessing(), c.classNames(), c.featureNames());
            synchronized (p) {
                p.seen = before; // what it serves: reloadIfChanged waits for the next write
            }
            return p;
        }
    }

    /**
     * The names of a model's input values where its checkpoint records them (a model trained on a CSV table with a
     * header), in the order its inputs take them; else empty (images, a predictor made with {@link #of}).
     */
    public List<String> featureNames() { return featureNames; }

    /**
     * A row given by its columns' names, as the input a prediction takes: {@code p.classes(p.row(Map.of("height", 170,
     * "sex", "female")), 1)}. A client that names its values cannot send them in another order than the model's. A
     * column of text the model took as categories (features named {@code sex=female}, {@code sex=male}) takes its value
     * as text: 1 in its category's feature, 0 in the others (0 in all for a value the training set did not have). A null
     * is a missing value, which a model that standardizes its inputs fills with the training mean (and a category column
     * with zeros).
     *
     * @param values every column's raw value (a number, text for a category column, or null), by name, and nothing else
     * @return the values in the model's order
     * @throws IllegalArgumentException naming a column the row lacks or a key that is not one, a missing value the model
     *                                  cannot fill, or where the model names no features
     */
    public float[] row(java.util.Map<String, ?> values) {
        if (featureNames.isEmpty()) throw new IllegalArgumentException("this model names no features (it was not trained on a table with a header): give its input values in order");
        float[] x = new float[featureNames.size()];
        java.util.Set<String> used = new java.util.HashSet<>();
        for (int i = 0; i < x.length; i++) {
            String f = featureNames.get(i);
            String column = values.containsKey(f) ? f : categoryColumn(f, values.keySet());
            if (column == null) throw new IllegalArgumentException("no '" + columnOf(f) + "', a feature of the model (it takes " + String.join(", ", columns()) + ")");
            used.add(column);
            Object v = values.get(column);
            if (column.equals(f)) {
                if (v != null && !(v instanceof Number)) throw new IllegalArgumentException("'" + f + "': expected a number, got " + v);
                x[i] = v == null ? Float.NaN : ((Number) v).floatValue();
                if (v == null && !spec.fillsMissingValues())
                    throw new IllegalArgumentException("'" + f + "' is missing, and this model does not fill missing values (its first op does not standardize its inputs)");
            } else x[i] = isCategory(v, f.substring(column.length() + 1)) ? 1f : 0f;
        }
        if (used.size() != values.size()) {
            List<String> other = values.keySet().stream().filter(k -> !used.contains(k)).toList();
            throw new IllegalArgumentException(other + " " + (other.size() == 1 ? "is not a feature" : "are not features") + " of the model (it takes " + String.join(", ", columns()) + ")");
        }
        return x;
    }

    /**
     * Whether a row's value is the category a table wrote as {@code category}: the same text, or for a number (JSON has
     * no integers: 3 arrives as 3.0) the same number ("3" in a column that also held text).
     */
    private static boolean isCategory(Object value, String category) {
        if (value == null) return false;
        if (String.valueOf(value).equals(category)) return true;
        if (!(value instanceof Number n)) return false;
        try {
            return Double.parseDouble(category) == n.doubleValue();
        } catch (NumberFormatException e) {
            return false;
        }
    }

    /** The column a feature's name is of: a category's ({@code sex=female}) where {@code columns} has it, else null. */
    private static String categoryColumn(String feature, java.util.Set<String> columns) {
        for (int p = feature.indexOf('='); p >= 0; p = feature.indexOf('=', p + 1))
            if (columns.contains(feature.substring(0, p))) return feature.substring(0, p);
        return null;
    }

    /** The columns a row names: the features, a text column once for all its categories ({@code sex} for sex=female and sex=male). */
    private List<String> columns() { return featureNames.stream().map(this::columnOf).distinct().toList(); }

    /**
     * A feature's column: itself, or for a category's feature ({@code sex=female}, where another feature is of the same
     * column) the name before the '='.
     */
    private String columnOf(String feature) {
        for (int p = feature.indexOf('='); p >= 0; p = feature.indexOf('=', p + 1)) {
            String prefix = feature.substring(0, p + 1);
            if (featureNames.stream().filter(f -> f.startsWith(prefix)).count() > 1) return feature.substring(0, p);
        }
        return feature;
    }

    // ---------------------------------------------------------------- versions

    /** One copy of the parameters. refs counts the predictions on it, plus one while it is current. */
    private static final class Version {
        final Model model;
        /** Per parameter, 0 or NaN: where publish checks that the copy is finite. */
        final Tensor sums;
        final AtomicInteger refs = new AtomicInteger();
        long number;

        Version(Model model) {
            this.model = model;
            try {
                this.sums = model.backend().allocate(model.parameters().size());
            } catch (RuntimeException e) {
                model.close();
                throw e;
            }
        }

        void close() {
            sums.close();
            model.close();
        }
    }

    /**
     * Copies {@code trained}'s current parameters into a new version and makes it current; returns its
     * number. Call it from the thread that trains the model, between steps. Predictions already
     * running finish on the version they started with.
     */
    public long publish(Model trained) {
        if (closed) throw new IllegalStateException("predictor is closed");
        if (!Arrays.equals(trained.inputShape(), inputShape) || !trained.parameters().keySet().equals(parameterNames))
            throw new IllegalArgumentException("publish: the model does not match this predictor's (input " + Arrays.toString(trained.inputShape())
                    + " against " + Arrays.toString(inputShape) + ", parameters " + trained.parameters().keySet() + ")");
        Version v = spares.pollFirst();
        if (v == null) v = new Version(Model.create(spec, inputShape, be, 0));
        try {
            copyParameters(trained, v);
        } catch (NotFiniteException e) {
            spares.addFirst(v); // nothing published; the copy is overwritten by the next publish
            if (closed) drainSpares();
            throw e;
        } catch (RuntimeException e) {
            closeVersion(v);
            throw e;
        }
        v.refs.set(1);
        synchronized (this) { v.number = ++versions; }
        Version old = current.getAndSet(v);
        if (old != null) release(old);
        if (closed) retireCurrent(); // closed while publishing
        return v.number;
    }

    /**
     * Copies the trained parameters into {@code to}'s and checks the copy on the backend (each parameter's sum of squares
     * at scale 0), in one copy back: a NaN or an infinity throws {@link NotFiniteException}.
     */
    private void copyParameters(Model from, Version to) {
        from.guard().enter();
        lock();
        try {
            List<Parameter> params = List.copyOf(to.model.parameters().values());
            if (from.backend() == be) {
                for (Map.Entry<String, Parameter> e : from.parameters().entrySet()) be.copy(e.getValue().value(), to.model.parameters().get(e.getKey()).value());
            } else {
                Map<String, float[]> values = new LinkedHashMap<>();
                for (Map.Entry<String, Parameter> e : from.parameters().entrySet()) values.put(e.getKey(), from.backend().download(e.getValue().value()));
                values.forEach((name, data) -> be.upload(data, to.model.parameters().get(name).value()));
            }
            // Scale 0: the double sum of finite floats' squares stays finite, so the result is 0, or NaN where a value is not finite.
            for (int i = 0; i < params.size(); i++) be.sumSquares(params.get(i).value(), 0f, to.sums, i);
            float[] sums = be.download(to.sums); // waits for the copies too
            for (int i = 0; i < sums.length; i++)
                if (!Float.isFinite(sums[i])) throw new NotFiniteException(params.get(i).name(), current.get());
        } finally {
            unlock();
            from.guard().exit();
        }
    }

    /**
     * {@link #publish} refused a model with a NaN or infinite parameter (a step that diverged): the version that was
     * current stays current.
     */
    public static final class NotFiniteException extends IllegalStateException {
        /** The first parameter found holding a NaN or an infinity. */
        private final String parameter;

        NotFiniteException(String parameter, Version current) {
            super("publish: parameter '" + parameter + "' of the trained model is not finite; "
                    + (current == null ? "no version is current" : "version " + current.number + " stays current"));
            this.parameter = parameter;
        }

        /**
         * The first parameter found holding a NaN or an infinity.
         *
         * @return its state_dict name
         */
        public String parameter() { return parameter; }
    }

    // ---------------------------------------------------------------- checkpoints another process writes

    /** A checkpoint file as the last reload found it: a write replaces the file (atomically), so its key or time changes. */
    private record Seen(Path file, Object key, java.nio.file.attribute.FileTime modified, long size) {}

    /** What the last reload read; guarded by this. */
    private Seen seen;

    /**
     * Publishes the parameters of a checkpoint another process wrote, as {@link #publish} does for a model in this
     * one, and returns the new version's number: a service serving what a separate training run saves. {@code
     * checkpoint} is a run folder (its {@code model.safetensors}, else its {@code checkpoint.safetensors}) or a
     * {@code .safetensors} file. It must hold this predictor's model, with its preprocessing and class names: otherwise
     * {@link IllegalArgumentException} naming the file and what differs. A checkpoint with a NaN or an infinity throws
     * {@link NotFiniteException}. Either way the current version keeps answering. predcode writes checkpoints
     * atomically, so a reload never reads half of one.
     *
     * @param checkpoint a run folder or a checkpoint file
     * @return the number of the version now current
     * @throws IOException where the file cannot be read or is not a checkpoint (naming it)
     */
    public synchronized long reload(Path checkpoint) throws IOException {
        Path file = servedFile(checkpoint);
        return reload(file, identify(file));
    }

    /** Reloads {@code file}, identified as {@code identity} just before. */
    private long reload(Path file, Seen identity) throws IOException {
        // Noted before reading: a write that lands while this one loads is seen by the next reloadIfChanged. Noted even
        // when the load fails, so a poller reports a bad file once, not at every poll, and takes the next good one.
        seen = identity;
        Checkpoint.Loaded c = Checkpoint.load(file);
        String differs = !c.spec().withInput(c.inputShape()).equals(spec.withInput(inputShape)) ? "holds another model: " + c.spec().withInput(c.inputShape())
                + ", where this predictor serves " + spec.withInput(inputShape)
                : !c.preprocessing().equals(preprocessing) ? "preprocesses inputs as " + c.preprocessing() + ", where this predictor applies " + preprocessing
                : !c.classNames().equals(classNames) ? "names the classes " + c.classNames() + ", where this predictor names " + classNames : null;
        if (differs != null) throw new IllegalArgumentException("reload: " + file + " " + differs + "; serve it with a new Predictor");
        try (Model m = c.model(be)) {
            return publish(m);
        }
    }

    /**
     * {@link #reload} where the checkpoint's file has been written since the last reload (or since {@link #load} read
     * it; a predictor made otherwise reloads at the first call), else nothing: for polling a training run's folder from
     * a scheduled task. A checkpoint that was refused is not read again until it is written again.
     *
     * @param checkpoint a run folder or a checkpoint file
     * @return the number of the version now current
     * @throws IOException where the file cannot be read or is not a checkpoint (naming it)
     */
    public synchronized long reloadIfChanged(Path checkpoint) throws IOException {
        Path file = servedFile(checkpoint);
        Seen now = identify(file);
        return now.equals(seen) ? version() : reload(file, now);
    }

    /** The watches polling for this predictor, stopped by {@link #close}. */
    private final java.util.Set<CheckpointWatch> watches = java.util.concurrent.ConcurrentHashMap.newKeySet();

    /**
     * Polls {@code checkpoint} every {@code every} on a thread of its own and publishes each checkpoint written there
     * ({@link #reloadIfChanged}), telling {@code listener} of each new version and each refused or missing checkpoint
     * once. The returned watch's {@code close()} stops it; so does closing this predictor.
     *
     * @param checkpoint a run folder or a checkpoint file
     * @param every      the time between polls (a poll compares the file's identity, time and size)
     * @param listener   told of each outcome; null for none
     * @return the running watch
     */
    public CheckpointWatch watch(Path checkpoint, java.time.Duration every, CheckpointWatch.Listener listener) {
        if (closed) throw new IllegalStateException("predictor is closed");
        CheckpointWatch w = new CheckpointWatch(this, checkpoint, every, listener);
        watches.add(w);
        w.start();
        return w;
    }

    void forget(CheckpointWatch w) { watches.remove(w); }

    /** Whether {@link #close} has been called. */
    public boolean isClosed() { return closed; }

    /** The file a reload reads: a folder's parameters alone where they are there (a third of what the training state weighs). */
    private static Path servedFile(Path checkpoint) {
        if (!java.nio.file.Files.isDirectory(checkpoint)) return checkpoint;
        Path model = checkpoint.resolve(Checkpoint.MODEL_FILE);
        return java.nio.file.Files.exists(model) ? model : checkpoint.resolve(Checkpoint.RESUME_FILE);
    }

    private static Seen identify(Path file) throws IOException {
        java.nio.file.attribute.BasicFileAttributes a;
        try {
            a = java.nio.file.Files.readAttributes(file, java.nio.file.attribute.BasicFileAttributes.class);
        } catch (java.nio.file.NoSuchFileException e) {
            throw new java.nio.file.NoSuchFileException(file.toString(), null, "no checkpoint to reload");
        }
        return new Seen(file, a.fileKey(), a.lastModifiedTime(), a.size());
    }

    /** The number of the current version (1 for the first, +1 per publish). */
    public long version() {
        Version v = current.get();
        if (v == null) throw new IllegalStateException("predictor is closed");
        return v.number;
    }

    private Version acquire() {
        while (true) {
            Version v = current.get();
            if (v == null) throw new IllegalStateException("predictor is closed");
            int r = v.refs.get();
            if (r > 0 && v.refs.compareAndSet(r, r + 1)) return v;
            // r == 0: a publish retired it after we read it; read the new current.
            Thread.onSpinWait();
        }
    }

    private void release(Version v) {
        if (v.refs.decrementAndGet() != 0) return;
        if (!closed && spares.size() < SPARE_VERSIONS) {
            spares.offerFirst(v);
            if (closed) drainSpares(); // close ran meanwhile: make sure it is freed
        } else {
            closeVersion(v);
        }
    }

    private void retireCurrent() {
        Version v = current.getAndSet(null);
        if (v != null) release(v);
    }

    private void drainSpares() {
        for (Version v; (v = spares.pollFirst()) != null; ) closeVersion(v);
    }

    private void closeVersion(Version v) {
        lock();
        try {
            v.close();
        } finally {
            unlock();
        }
    }

    // ---------------------------------------------------------------- lanes

    /**
     * The activations of one running prediction: a full set for {@code capacity} samples, and views of
     * it for fewer. The tapes are laid out from a version's blocks; every version has the same shapes,
     * so a lane serves all of them.
     */
    private final class Lane {
        final Scope scope;
        final int capacity;
        final List<Block> blocks;
        final Tensor x, ones;
        final Block.Tape[] tapes;
        final Map<Integer, Lane> views;

        /** A lane with memory of its own. */
        Lane(int capacity, List<Block> blocks) { this(new Scope(be), capacity, blocks, true); }

        private Lane(Scope scope, int capacity, List<Block> blocks, boolean owner) {
            this.scope = scope;
            this.capacity = capacity;
            this.blocks = blocks;
            this.views = owner ? new LinkedHashMap<>(16, 0.75f, true) {
                @Override protected boolean removeEldestEntry(Map.Entry<Integer, Lane> e) { return size() > KEPT_VIEWS; }
            } : null;
            try {
                x = scope.allocate(Block.withBatch(capacity, inputShape));
                ones = preprocessing.isIdentity() ? null : scope.allocate(Block.withBatch(capacity, inputShape));
                if (ones != null && owner) be.fill(ones, 1f);
                tapes = new Block.Tape[blocks.size()];
                for (int b = 0; b < tapes.length; b++) tapes[b] = blocks.get(b).newTape(scope, capacity, false);
            } catch (RuntimeException e) {
                if (owner) scope.close();
                throw e;
            }
        }

        /** This lane, or views of it, for a batch of {@code batch <= capacity}. */
        Lane forBatch(int batch) {
            if (batch == capacity) return this;
            return views.computeIfAbsent(batch, n -> new Lane(Scope.viewsOf(scope), n, blocks, false));
        }

        void close() { scope.close(); }
    }

    private Lane takeLane(int batch, List<Block> blocks) {
        Lane lane = pollLane();
        if (lane != null && lane.capacity >= batch) return lane;
        int capacity = lane == null ? batch : Math.max(batch, 2 * lane.capacity);
        if (lane != null) closeLane(lane);
        return new Lane(capacity, blocks);
    }

    private Lane pollLane() {
        for (int i = 0; i < lanes.length(); i++) {
            Lane l = lanes.get(i);
            if (l != null && lanes.compareAndSet(i, l, null)) return l;
        }
        return null;
    }

    private void returnLane(Lane lane) {
        boolean kept = false;
        for (int i = 0; i < lanes.length() && !kept; i++) kept = lanes.get(i) == null && lanes.compareAndSet(i, null, lane);
        if (!kept) closeLane(lane); // more lanes than slots were running at once: free the extra one
        if (closed) drainLanes(); // close ran meanwhile: make sure it is freed
    }

    private void closeLane(Lane l) {
        lock();
        try {
            l.close();
        } finally {
            unlock();
        }
    }

    private void drainLanes() {
        for (Lane l; (l = pollLane()) != null; ) closeLane(l);
    }

    // ---------------------------------------------------------------- predictions

    /** Floats per sample of the raw input. */
    public int inputSize() { return inputSize; }

    /** Floats per sample of the output (the number of classes for a classifier). */
    public int outputSize() { return outputSize; }

    /** The class names, in output order; empty when the predictor has none. */
    public List<String> classNames() { return classNames; }

    /** How raw inputs are mapped to the model's inputs. */
    public Preprocessing preprocessing() { return preprocessing; }

    /** The model outputs (logits for a classifier) for {@code batch} samples in {@code x}, row by row. */
    public float[] logits(float[] x, int batch) {
        checkBatch(batch, x.length, "x"); // before sizing the result by it
        float[] out = new float[batch * outputSize];
        logits(x, batch, out);
        return out;
    }

    /** As {@link #logits(float[], int)} into {@code out} ({@code batch * outputSize()} floats); returns the version that answered. */
    public long logits(float[] x, int batch, float[] out) {
        checkBatch(batch, x.length, "x");
        checkOut(out.length, batch);
        return run(x, null, batch, out);
    }

    /** As {@link #logits(float[], int, float[])} from float32 memory (heap or off-heap). */
    public long logits(MemorySegment x, int batch, float[] out) {
        if (x.byteSize() % Float.BYTES != 0) throw new IllegalArgumentException("predict: input segment of " + x.byteSize() + " bytes is not a whole number of floats");
        checkBatch(batch, x.byteSize() / Float.BYTES, "x");
        checkOut(out.length, batch);
        return run(null, x, batch, out);
    }

    /** One row of outputs per sample row. */
    public float[][] logits(float[][] rows) {
        float[] flat = logits(flatten(rows), rows.length);
        float[][] out = new float[rows.length][];
        for (int i = 0; i < rows.length; i++) out[i] = Arrays.copyOfRange(flat, i * outputSize, (i + 1) * outputSize);
        return out;
    }

    /** Class probabilities (softmax of the logits, per sample). */
    public float[] probabilities(float[] x, int batch) {
        checkBatch(batch, x.length, "x");
        float[] out = new float[batch * outputSize];
        probabilities(x, batch, out);
        return out;
    }

    /** As {@link #probabilities(float[], int)} into {@code out}; returns the version that answered. */
    public long probabilities(float[] x, int batch, float[] out) {
        long version = logits(x, batch, out);
        softmaxRows(out, batch, outputSize);
        return version;
    }

    /** The most likely class of each sample (the first, on ties). */
    public int[] classes(float[] x, int batch) {
        checkBatch(batch, x.length, "x");
        int[] out = new int[batch];
        classes(x, batch, out, new float[batch * outputSize]);
        return out;
    }

    /** As {@link #classes(float[], int)} into {@code out}, with {@code scratch} ({@code batch * outputSize()} floats) for the logits; returns the version. */
    public long classes(float[] x, int batch, int[] out, float[] scratch) {
        if (out.length < batch) throw new IllegalArgumentException("classes: out has " + out.length + " ints for a batch of " + batch);
        long version = logits(x, batch, scratch);
        for (int i = 0; i < batch; i++) out[i] = argmax(scratch, i * outputSize, outputSize);
        return version;
    }

    /** The most likely class of one sample. */
    public int classOf(float[] sample) { return classes(sample, 1)[0]; }

    /** One prediction from {@code array} or, when it is null, {@code segment}. */
    private long run(float[] array, MemorySegment segment, int batch, float[] out) {
        if (closed) throw new IllegalStateException("predictor is closed");
        Version v = acquire();
        Lane lane = null;
        lock();
        try {
            List<Block> blocks = v.model.blocks();
            lane = takeLane(batch, blocks);
            Lane l = lane.forBatch(batch);
            if (array != null) be.upload(array, 0, l.x, 0, batch * inputSize);
            else be.upload(segment, l.x, 0);
            if (l.ones != null) be.add(preprocessing.scale(), l.x, preprocessing.shift(), l.ones, l.x);
            Tensor in = l.x;
            for (int b = 0; b < blocks.size(); b++) {
                blocks.get(b).forward(be, in, l.tapes[b]);
                in = l.tapes[b].output();
            }
            be.download(in, 0, out, 0, batch * outputSize);
            return v.number;
        } finally {
            unlock();
            if (lane != null) returnLane(lane);
            release(v);
        }
    }

    private void lock() { be.beginTurn(); }

    private void unlock() { be.endTurn(); }

    private void checkBatch(int batch, long floats, String what) {
        if (batch < 1) throw new IllegalArgumentException("predict: batch must be >= 1, got " + batch);
        if (floats != (long) batch * inputSize)
            throw new IllegalArgumentException("predict: " + what + " has " + floats + " floats; a batch of " + batch + " samples of shape "
                    + Arrays.toString(inputShape) + " needs " + (long) batch * inputSize);
    }

    private void checkOut(int length, int batch) {
        if (length < (long) batch * outputSize)
            throw new IllegalArgumentException("predict: out has " + length + " floats; a batch of " + batch + " needs " + (long) batch * outputSize);
    }

    private float[] flatten(float[][] rows) {
        float[] flat = new float[rows.length * inputSize];
        for (int i = 0; i < rows.length; i++) {
            if (rows[i].length != inputSize)
                throw new IllegalArgumentException("predict: row " + i + " has " + rows[i].length + " floats; expected " + inputSize);
            System.arraycopy(rows[i], 0, flat, i * inputSize, inputSize);
        }
        return flat;
    }

    /**
     * Softmax of each row in place, in double, shifted by the row's maximum as PyTorch does: what {@link #probabilities}
     * makes of the logits.
     *
     * @param a     {@code rows} rows of {@code width} logits, one after another
     * @param rows  the number of rows
     * @param width the values per row
     */
    public static void softmaxRows(float[] a, int rows, int width) {
        for (int r = 0; r < rows; r++) {
            int o = r * width;
            float max = Float.NEGATIVE_INFINITY;
            for (int i = 0; i < width; i++) max = Math.max(max, a[o + i]);
            double sum = 0;
            for (int i = 0; i < width; i++) sum += Math.exp((double) a[o + i] - max);
            for (int i = 0; i < width; i++) a[o + i] = (float) (Math.exp((double) a[o + i] - max) / sum);
        }
    }

    static int argmax(float[] a, int from, int width) {
        int best = 0;
        for (int i = 1; i < width; i++) if (a[from + i] > a[from + best]) best = i;
        return best;
    }

    private static int size(int[] shape) {
        int n = 1;
        for (int d : shape) n = Math.multiplyExact(n, d);
        return n;
    }

    /**
     * Stops taking predictions and frees everything: the current version and the spares now, and any
     * version or lane still in use as soon as its prediction returns. Idempotent.
     */
    @Override public void close() {
        if (closed) return;
        for (CheckpointWatch w : List.copyOf(watches)) w.close(); // first: none reloads into a predictor being closed
        closed = true;
        retireCurrent();
        drainSpares();
        drainLanes();
    }

    @Override public String toString() {
        Version v = current.get();
        return "Predictor(" + be.name() + ", input " + Arrays.toString(inputShape) + ", output " + Arrays.toString(outputShape)
                + (v == null ? ", closed" : ", version " + v.number) + ")";
    }
}
