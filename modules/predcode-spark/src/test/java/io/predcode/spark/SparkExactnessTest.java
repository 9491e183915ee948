package io.predcode.spark;

import io.predcode.core.nn.BuiltinModels;
import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.nn.ModelSpec;
import io.predcode.core.optim.Sgd;
import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.BeliefOptimizer;
import io.predcode.core.pc.Energy;
import io.predcode.core.pc.PcEngine;
import io.predcode.core.pc.Trainer;
import io.predcode.data.DataSources;
import io.predcode.data.Dataset;
import io.predcode.spi.Backend;
import io.predcode.spi.Backends;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import static org.junit.jupiter.api.Assertions.*;

/** Synchronous training on local[2] with 2 partitions is single-process training on the same global batches. */
class SparkExactnessTest {
    static final int STEPS = 6, BATCH = 64, PARTITIONS = 2;
    static JavaSparkContext sc;
    static Dataset train;

    @BeforeAll static void start() throws Exception {
        sc = SparkSetup.start("local[2]", Map.of(), Duration.ofSeconds(60));
        train = DataSources.load("digits").train().holdOut(0.1, 3)[0];
    }

    @AfterAll static void stop() {
        if (sc != null) sc.stop();
    }

    static RunSpec spec(String algorithm, long failOnceAtStep) { return spec(algorithm, failOnceAtStep, "none"); }

    static RunSpec spec(String algorithm, long failOnceAtStep, String augment) {
        ModelSpec m = BuiltinModels.get("digits-mlp");
        boolean pc = algorithm.equals("pc");
        return new RunSpec(UUID.randomUUID().toString(), m.toJson(), m.input(), "digits", 0.1, 3, true, algorithm, 0.1f, 5, "cross_entropy",
                pc ? "sample" : "torch2pc", pc ? "sgd:0.5" : "sgd", "none", BATCH, PARTITIONS, "cpu", 1, failOnceAtStep, 1f, 0f, augment);
    }

    /** digits-mlp with cross-entropy on {@code data}, n 5, SGD on the beliefs, BATCH over PARTITIONS. */
    static RunSpec spec(String data, String algorithm, float eta, String energy) {
        ModelSpec m = BuiltinModels.get("digits-mlp");
        return new RunSpec(UUID.randomUUID().toString(), m.toJson(), m.input(), data, 0.1, 3, true, algorithm, eta, 5, "cross_entropy",
                energy, "sgd", "none", BATCH, PARTITIONS, "cpu", 1, -1, 1f, 0f, "none");
    }

    /** {@code c} with another backend and stable relaxation on or off. */
    static RunSpec with(RunSpec c, String backend, boolean stableRelaxation) {
        return new RunSpec(c.runId(), c.specJson(), c.inputShape(), c.data(), c.validation(), c.seed(), c.shuffle(), c.algorithm(), c.eta(), c.n(), c.loss(),
                c.energy(), c.beliefOptimizer(), c.nudging(), c.globalBatch(), c.partitions(), backend, c.threads(), c.failOnceAtStep(), c.inputScale(),
                c.inputShift(), c.augment(), stableRelaxation);
    }

    /** The parameters after STEPS steps on Spark, a job per step. */
    static Map<String, float[]> onSpark(RunSpec spec) { return onSpark(spec, 1); }

    /** The parameters after STEPS steps on Spark, {@code perJob} steps per barrier job (1: a plain job per step). */
    static Map<String, float[]> onSpark(RunSpec spec, int perJob) { return onSpark(spec, perJob, true); }

    /** As {@link #onSpark(RunSpec, int)}, the shards exchanging through the block manager or through allGather's strings. */
    static Map<String, float[]> onSpark(RunSpec spec, int perJob, boolean viaBlocks) { return onSpark(spec, perJob, viaBlocks, new java.util.ArrayList<>()); }

    /** As {@link #onSpark(RunSpec, int, boolean)}, each step's energies ({@link SparkTraining.StepResult#energies}) added to {@code energies}. */
    static Map<String, float[]> onSpark(RunSpec spec, int perJob, boolean viaBlocks, List<Stepped> energies) {
        try (Backend be = Backends.open(spec.backend()); Model model = Model.create(ModelSpec.parse(spec.specJson(), "spec"), spec.inputShape(), be, 3);
             Sgd sgd = new Sgd(model, 0.1f, 0.9f, 0f); SparkTraining t = new SparkTraining(sc, spec, train.size(), model, sgd).exchangeViaBlocks(viaBlocks)) {
            for (int s = 0; s < STEPS; ) {
                List<SparkTraining.StepResult> rs = perJob == 1 ? List.of(t.step(0, s)) : t.synchronous(0, s, lrs(Math.min(perJob, STEPS - s), 0.1f));
                for (SparkTraining.StepResult r : rs) {
                    assertEquals(BATCH, r.samples());
                    assertTrue(Float.isFinite(r.loss()));
                    energies.add(new Stepped(r.energies(), r.eta()));
                }
                s += rs.size();
            }
            assertEquals(STEPS, t.steps());
            // Spark does not retry a barrier result stage whose task failed: the job's steps run again, one job each.
            if (perJob > 1 && spec.failOnceAtStep() < 0) assertNull(t.barrierFailure(), "every step ran in a barrier job");
            if (perJob > 1 && spec.failOnceAtStep() >= 0) assertTrue(t.barrierFailure().contains("barrier"), t.barrierFailure());
            assertEquals(STEPS, sgd.steps(), "the driver's optimizer carries the executors' step count");
            return model.parameterValues();
        }
    }

    static float[] lrs(int k, float lr) {
        float[] a = new float[k];
        java.util.Arrays.fill(a, lr);
        return a;
    }

    /** The same steps in this process: the plan's global batches through a Trainer. */
    static Map<String, float[]> inProcess(RunSpec spec) { return inProcess(spec, new java.util.ArrayList<>()); }

    /** As {@link #inProcess(RunSpec)}, each step's energies ({@link Trainer#recordEnergies}) added to {@code energies}. */
    static Map<String, float[]> inProcess(RunSpec spec, List<Stepped> energies) {
        ShardPlan plan = ShardPlan.of(spec, train.size());
        Algorithm a = Algorithm.parse(spec.algorithm());
        try (Backend be = Backends.open(spec.backend()); Model model = Model.create(ModelSpec.parse(spec.specJson(), "spec"), spec.inputShape(), be, 3);
             PcEngine e = new PcEngine(model, Loss.parse(spec.loss())).energy(Energy.parse(spec.energy())).beliefOptimizer(BeliefOptimizer.parse(spec.beliefOptimizer()));
             Sgd sgd = new Sgd(model, 0.1f, 0.9f, 0f)) {
            Trainer t = new Trainer(e, sgd, a, spec.eta(), spec.n()).recordEnergies(true).stableRelaxation(spec.stableRelaxation());
            io.predcode.data.Augmentation augmentation = io.predcode.data.Augmentation.parse(spec.augment(), spec.inputShift());
            for (int s = 0; s < STEPS; s++) {
                Dataset batch = augmentation.subset(train, plan.globalBatch(0, s), spec.seed(), 0);
                Trainer.Step step = t.step(batch.images(), batch.labels(), batch.size());
                energies.add(new Stepped(step.energies(), step.eta()));
            }
            return model.parameterValues();
        }
    }

    /** What a run reports of a step: its energies per layer and the eta it relaxed with. */
    record Stepped(double[] energies, float eta) {}

    /**
     * The largest relative difference between two runs' energies, layer by layer and step by step; for backprop, which
     * has none, that both have none. Fails where one run's count of steps or layers is not the other's.
     */
    static double worstEnergy(String algorithm, List<Stepped> ref, List<Stepped> got) {
        assertEquals(ref.size(), got.size(), "steps with energies");
        double worst = 0;
        for (int s = 0; s < ref.size(); s++) {
            double[] a = ref.get(s).energies(), b = got.get(s).energies();
            if (algorithm.equals("backprop")) {
                assertNull(a, "backprop has no energies");
                assertNull(b, "backprop on Spark has no energies");
                continue;
            }
            assertNotNull(b, algorithm + " on Spark reports energies at step " + (s + 1));
            assertEquals(a.length, b.length, "layers");
            assertEquals(0, b[0], "the input is clamped");
            for (int l = 1; l < a.length; l++) {
                assertTrue(a[l] > 0, algorithm + ": layer " + l + "'s energy at step " + (s + 1) + " is " + a[l] + " in one process: nothing to compare");
                worst = Math.max(worst, Math.abs(a[l] - b[l]) / a[l]);
            }
        }
        return worst;
    }

    static double worst(Map<String, float[]> ref, Map<String, float[]> got) {
        double worst = 0;
        for (String k : ref.keySet()) {
            double num = 0, den = 0;
            float[] a = ref.get(k), b = got.get(k);
            for (int i = 0; i < a.length; i++) { num += (a[i] - b[i]) * (double) (a[i] - b[i]); den += (double) a[i] * a[i]; }
            worst = Math.max(worst, Math.sqrt(num / Math.max(den, 1e-30)));
        }
        return worst;
    }

    @ParameterizedTest @ValueSource(strings = {"backprop", "exact", "fixedpred", "strict", "pc", "zil"})
    void sparkEqualsOneProcess(String algorithm) {
        RunSpec spec = spec(algorithm, -1);
        List<Stepped> refEnergies = new java.util.ArrayList<>(), jobEnergies = new java.util.ArrayList<>(), barrierEnergies = new java.util.ArrayList<>();
        Map<String, float[]> ref = inProcess(spec, refEnergies);
        Map<String, float[]> blocks = onSpark(spec, 4, true, barrierEnergies), strings = onSpark(spec, 4, false);
        double e = worst(ref, onSpark(spec, 1, true, jobEnergies)), barrier = worst(ref, blocks);
        double energies = Math.max(worstEnergy(algorithm, refEnergies, jobEnergies), worstEnergy(algorithm, refEnergies, barrierEnergies));
        System.out.printf("%s: %d steps of batch %d on local[2] with %d partitions against one process: relative difference of the parameters %.2e (a job per step), %.2e (4 steps per barrier job); of the layers' energies %.2e%n",
                algorithm, STEPS, BATCH, PARTITIONS, e, barrier, energies);
        assertTrue(e <= 1e-5, algorithm + ": " + e);
        assertTrue(barrier <= 1e-5, algorithm + " in barrier jobs: " + barrier);
        assertTrue(energies <= 1e-4, algorithm + ": the layers' energies on Spark against one process: " + energies);
        for (String k : blocks.keySet()) assertArrayEquals(strings.get(k), blocks.get(k), "the two exchanges sum the same updates in the same order: " + k);
        assertTrue(predcodeBlocks().isEmpty(), "blocks left behind: " + predcodeBlocks());
    }

    /**
     * Executors on the CUDA backend (the host simulator where no GPU is) against one process on it: the same
     * parameters and energies, as on the CPU. Each executor opens a backend of its own beside the driver's.
     */
    @Test void sparkOnTheCudaBackendEqualsOneProcessOnIt() {
        io.predcode.spi.Availability cuda = Backends.provider("cuda").availability();
        if (!cuda.available()) System.out.println("Spark on CUDA skipped: " + cuda.reason());
        org.junit.jupiter.api.Assumptions.assumeTrue(cuda.available(), "the cuda backend is unavailable");
        for (String algorithm : new String[]{"strict", "pc"}) {
            RunSpec spec = with(spec(algorithm, -1), "cuda", false);
            List<Stepped> refEnergies = new java.util.ArrayList<>(), sparkEnergies = new java.util.ArrayList<>();
            double e = worst(inProcess(spec, refEnergies), onSpark(spec, 4, true, sparkEnergies)), energies = worstEnergy(algorithm, refEnergies, sparkEnergies);
            System.out.printf("%s on Spark, executors on cuda (%s), against one process on it: parameters %.2e, energies %.2e%n", algorithm, cuda.reason(), e, energies);
            assertTrue(e <= 1e-5, algorithm + ": " + e);
            assertTrue(energies <= 1e-4, algorithm + ": " + energies);
        }
    }

    /**
     * --stable-relaxation on Spark: a STRICT relaxation whose step size makes the global batch's energy rise halves eta, from
     * that step on, and relaxes the batch again, taking the etas one process takes, step by step, with the same parameters,
     * in a job per step and in barrier jobs.
     */
    @Test void aGuardedRelaxationHalvesEtaAsOneProcessDoes() {
        // At eta 1.355 digits-mlp's sixth step raises the energy (1.34 none, 1.35-1.36 the sixth, 1.37 the second, 1.38 the first):
        // halved there, in the middle of the second barrier job of four steps.
        RunSpec spec = with(spec("digits", "strict", 1.355f, "torch2pc"), "cpu", true);
        List<Stepped> ref = new java.util.ArrayList<>(), job = new java.util.ArrayList<>(), barrier = new java.util.ArrayList<>();
        Map<String, float[]> one = inProcess(spec, ref);
        double e = worst(one, onSpark(spec, 1, true, job)), b = worst(one, onSpark(spec, 4, true, barrier));
        List<Float> etas = ref.stream().map(Stepped::eta).toList();
        System.out.printf("guarded STRICT: one process's etas %s; on Spark the same, parameters %.2e (a job per step), %.2e (barrier jobs)%n", etas, e, b);
        assertEquals(List.of(1.355f, 1.355f, 1.355f, 1.355f, 1.355f, 0.6775f), etas, "one process halves eta at the sixth step");
        assertEquals(etas, job.stream().map(Stepped::eta).toList(), "a job per step");
        assertEquals(etas, barrier.stream().map(Stepped::eta).toList(), "barrier jobs");
        assertTrue(e <= 1e-5 && b <= 1e-5, e + ", " + b);
        // Unguarded, the sixth step relaxes at 1.355 and ends elsewhere.
        List<Stepped> plain = new java.util.ArrayList<>();
        assertTrue(worst(one, onSpark(with(spec, "cpu", false), 4, true, plain)) > 1e-4, "the guard changed the sixth step");
        assertEquals(1.355f, plain.getLast().eta());
    }

    /**
     * Averaged local steps guard each shard's relaxation of its own batch, and the next job starts from the smallest eta a
     * shard ended with. With one shard, its batch the global batch and its optimizer one process's, that is one process's
     * guarded run: the same etas, halved at the fifth step (in the second job), and the same parameters.
     */
    @Test void localStepsGuardEachShardsRelaxation() {
        RunSpec spec = with(spec("digits", "strict", 1.355f, "torch2pc"), "cpu", true), alone = withPartitions(spec, 1);
        List<Stepped> ref = new java.util.ArrayList<>(), local = new java.util.ArrayList<>();
        Map<String, float[]> one = inProcess(alone, ref), spark = averaged(alone, 4, local);
        double e = worst(one, spark);
        List<Float> etas = ref.stream().map(Stepped::eta).toList();
        System.out.printf("guarded STRICT, local steps on one shard: etas %s (one process %s), parameters %.2e%n", local.stream().map(Stepped::eta).toList(), etas, e);
        assertEquals(List.of(1.355f, 1.355f, 1.355f, 1.355f, 0.6775f, 0.6775f), etas, "one process on one shard's plan halves eta at the fifth step");
        assertEquals(etas, local.stream().map(Stepped::eta).toList(), "one shard's local steps take one process's etas");
        assertTrue(e <= 1e-5, "and end where it does: " + e);
        // Two shards: at 1.38 the first step's global relaxation raises the energy (one process halves there), so some
        // shard's does, from the same parameters; etas only come down, each a halving of 1.38.
        RunSpec wide = with(spec("digits", "strict", 1.38f, "torch2pc"), "cpu", true);
        List<Stepped> two = new java.util.ArrayList<>(), plain = new java.util.ArrayList<>();
        Map<String, float[]> guarded = averaged(wide, 3, two), unguarded = averaged(with(wide, "cpu", false), 3, plain);
        List<Float> twoEtas = two.stream().map(Stepped::eta).toList();
        System.out.printf("guarded STRICT, local steps on two shards: etas %s%n", twoEtas);
        assertTrue(twoEtas.getFirst() < 1.38f, twoEtas.toString());
        for (int i = 0; i < twoEtas.size(); i++) {
            float q = 1.38f / twoEtas.get(i);
            assertEquals(q, (float) Math.scalb(1f, Math.getExponent(q)), 0f, "a halving of 1.38: " + twoEtas);
            if (i > 0) assertTrue(twoEtas.get(i) <= twoEtas.get(i - 1), twoEtas.toString());
        }
        assertTrue(plain.stream().allMatch(p -> p.eta() == 1.38f), "unguarded, every step relaxes at 1.38");
        assertTrue(worst(guarded, unguarded) > 1e-4, "the guard changed the steps");
    }

    /** {@code c} on {@code partitions} shards of the same global batch. */
    static RunSpec withPartitions(RunSpec c, int partitions) {
        return new RunSpec(c.runId(), c.specJson(), c.inputShape(), c.data(), c.validation(), c.seed(), c.shuffle(), c.algorithm(), c.eta(), c.n(), c.loss(),
                c.energy(), c.beliefOptimizer(), c.nudging(), c.globalBatch(), partitions, c.backend(), c.threads(), c.failOnceAtStep(), c.inputScale(),
                c.inputShift(), c.augment(), c.stableRelaxation());
    }

    /** The parameters after STEPS local steps averaged every {@code every} (SGD lr 0.1, momentum 0.9, as one process's), each step's eta added to {@code steps}. */
    static Map<String, float[]> averaged(RunSpec spec, int every, List<Stepped> steps) {
        try (Backend be = Backends.open(spec.backend()); Model model = Model.create(ModelSpec.parse(spec.specJson(), "spec"), spec.inputShape(), be, 3);
             Sgd sgd = new Sgd(model, 0.1f, 0.9f, 0f); SparkTraining t = new SparkTraining(sc, spec, train.size(), model, sgd)) {
            for (int s = 0; s < STEPS; s += every)
                t.averaged(0, s, Math.min(every, STEPS - s)).forEach(r -> steps.add(new Stepped(r.energies(), r.eta())));
            assertEquals(STEPS, t.steps());
            return model.parameterValues();
        }
    }

    /**
     * A monitored step on Spark compares the summed update with the global batch's backprop gradient, block by block, as
     * {@code Trainer.monitorEvery} does in one process: the same angles and relative errors, and the update applied unchanged.
     */
    @Test void aMonitoredStepMeasuresWhatOneProcessMeasures() {
        RunSpec spec = spec("strict", -1);
        ShardPlan plan = ShardPlan.of(spec, train.size());
        List<io.predcode.core.pc.Alignment> ref = new java.util.ArrayList<>(), got = new java.util.ArrayList<>();
        Map<String, float[]> one, spark;
        try (Backend be = Backends.open("cpu"); Model model = Model.create(ModelSpec.parse(spec.specJson(), "spec"), spec.inputShape(), be, 3);
             PcEngine e = new PcEngine(model, Loss.parse(spec.loss())); Sgd sgd = new Sgd(model, 0.1f, 0.9f, 0f)) {
            Trainer t = new Trainer(e, sgd, Algorithm.STRICT, spec.eta(), spec.n()).monitorEvery(2);
            for (int s = 0; s < STEPS; s++) {
                Dataset batch = train.subset("step", plan.globalBatch(0, s));
                io.predcode.core.pc.Alignment a = t.step(batch.images(), batch.labels(), batch.size()).alignment();
                if (a != null) ref.add(a);
            }
            one = model.parameterValues();
        }
        try (Backend be = Backends.open("cpu"); Model model = Model.create(ModelSpec.parse(spec.specJson(), "spec"), spec.inputShape(), be, 3);
             Sgd sgd = new Sgd(model, 0.1f, 0.9f, 0f); SparkTraining t = new SparkTraining(sc, spec, train.size(), model, sgd)) {
            for (int s = 0; s < STEPS; s++) {
                io.predcode.core.pc.Alignment a = t.step(0, s, (s + 1) % 2 == 0).alignment();
                if (a != null) got.add(a);
            }
            spark = model.parameterValues();
        }
        assertEquals(3, ref.size());
        assertEquals(3, got.size());
        for (int i = 0; i < ref.size(); i++) {
            assertEquals(ref.get(i).step(), got.get(i).step());
            assertArrayEquals(ref.get(i).blocks(), got.get(i).blocks());
            assertArrayEquals(ref.get(i).angleDegrees(), got.get(i).angleDegrees(), 1e-3, "step " + ref.get(i).step());
            assertArrayEquals(ref.get(i).relativeError(), got.get(i).relativeError(), 1e-5, "step " + ref.get(i).step());
        }
        double e = worst(one, spark);
        System.out.printf("monitored STRICT on Spark: angles at steps 2, 4, 6 %s against one process's %s; parameters %.2e%n",
                got.stream().map(a -> java.util.Arrays.toString(a.angleDegrees())).toList(), ref.stream().map(a -> java.util.Arrays.toString(a.angleDegrees())).toList(), e);
        assertTrue(e <= 1e-5, "the monitored steps' updates are applied unchanged: " + e);
    }

    /** Each executor augments its shard's images as one process augments those samples: the same draw per (seed, epoch, sample). */
    @Test void augmentedSparkEqualsOneProcess() {
        RunSpec plain = spec("pc", -1), augmented = spec("pc", -1, "flip,crop:2");
        Map<String, float[]> ref = inProcess(augmented), got = onSpark(augmented, 4);
        double e = worst(ref, got), apart = worst(inProcess(plain), ref);
        System.out.printf("augmented pc on Spark against one process: %.2e; against no augmentation: %.2e%n", e, apart);
        assertTrue(e <= 1e-5, "augmented: " + e);
        assertTrue(apart > 1e-3, "the augmentation changed the training: " + apart);
    }

    /** The shards' update blocks still in this JVM's block manager (local[2]: every task's). */
    static List<String> predcodeBlocks() {
        scala.Function1<org.apache.spark.storage.BlockId, Object> ours = id -> id.name().startsWith("test_predcode-");
        return scala.jdk.javaapi.CollectionConverters.asJava(org.apache.spark.SparkEnv.get().blockManager().getMatchingBlockIds(ours)).stream()
                .map(org.apache.spark.storage.BlockId::name).toList();
    }

    /** Barrier jobs follow the driver's learning rate step by step (a schedule) and Adam's state, as jobs per step do. */
    @Test void barrierJobsCarryTheScheduleAndAdamsState() {
        RunSpec spec = spec("strict", -1);
        float[] lrs = {0.01f, 0.005f, 0.0025f, 0.002f, 0.001f, 0.0005f};
        Map<String, float[]> perStep, barrier;
        try (Backend be = Backends.open("cpu"); Model model = Model.create(ModelSpec.parse(spec.specJson(), "spec"), spec.inputShape(), be, 3);
             io.predcode.core.optim.Adam adam = new io.predcode.core.optim.Adam(model, 1f); SparkTraining t = new SparkTraining(sc, spec, train.size(), model, adam)) {
            for (int s = 0; s < STEPS; s++) {
                adam.learningRate(lrs[s]);
                t.step(0, s);
            }
            perStep = model.parameterValues();
            perStep.putAll(adam.state());
        }
        try (Backend be = Backends.open("cpu"); Model model = Model.create(ModelSpec.parse(spec.specJson(), "spec"), spec.inputShape(), be, 3);
             io.predcode.core.optim.Adam adam = new io.predcode.core.optim.Adam(model, 1f); SparkTraining t = new SparkTraining(sc, spec, train.size(), model, adam)) {
            assertEquals(2, t.synchronous(0, 0, java.util.Arrays.copyOfRange(lrs, 0, 2)).size());
            assertEquals(0, t.heldStarts(), "the first barrier job starts from the broadcast");
            assertEquals(4, t.synchronous(0, 2, java.util.Arrays.copyOfRange(lrs, 2, 6)).size());
            assertEquals(PARTITIONS, t.heldStarts(), "the second starts from the state the first left on every shard");
            assertNull(t.barrierFailure());
            assertEquals(lrs[5], adam.learningRate());
            barrier = model.parameterValues();
            barrier.putAll(adam.state());
        }
        for (String k : perStep.keySet()) assertArrayEquals(perStep.get(k), barrier.get(k), k);
    }

    /**
     * Shards start a barrier job from the state the last one left them only while the driver holds
     * exactly that state: parameters the driver changed itself (as a rollback does) make them fetch
     * the broadcast again.
     */
    @Test void shardsReuseTheirStateOnlyWhileTheDriverHoldsIt() {
        RunSpec spec = spec("strict", -1);
        java.util.function.Consumer<Model> halveFirst = model -> {
            Map<String, float[]> p = model.parameterValues();
            String k = p.keySet().iterator().next();
            float[] v = p.get(k);
            for (int i = 0; i < v.length; i++) v[i] *= 0.5f;
            model.loadParameters(p, "the test");
        };
        Map<String, float[]> perStep, barrier;
        try (Backend be = Backends.open("cpu"); Model model = Model.create(ModelSpec.parse(spec.specJson(), "spec"), spec.inputShape(), be, 3);
             Sgd sgd = new Sgd(model, 0.1f, 0.9f, 0f); SparkTraining t = new SparkTraining(sc, spec, train.size(), model, sgd)) {
            for (int s = 0; s < STEPS; s++) {
                if (s == 4) halveFirst.accept(model);
                t.step(0, s);
            }
            perStep = model.parameterValues();
        }
        try (Backend be = Backends.open("cpu"); Model model = Model.create(ModelSpec.parse(spec.specJson(), "spec"), spec.inputShape(), be, 3);
             Sgd sgd = new Sgd(model, 0.1f, 0.9f, 0f); SparkTraining t = new SparkTraining(sc, spec, train.size(), model, sgd)) {
            t.synchronous(0, 0, lrs(2, 0.1f));
            t.synchronous(0, 2, lrs(2, 0.1f));
            assertEquals(PARTITIONS, t.heldStarts(), "the second job starts from the state the first left");
            halveFirst.accept(model);           // the driver's own change, as a rollback's
            t.synchronous(0, 4, lrs(2, 0.1f));
            assertEquals(PARTITIONS, t.heldStarts(), "the third job starts from the broadcast: the driver changed the state");
            assertNull(t.barrierFailure());
            barrier = model.parameterValues();
        }
        for (String k : perStep.keySet()) assertArrayEquals(perStep.get(k), barrier.get(k), k);
    }

    /** A barrier job that cannot get a slot for every task (3 partitions on local[2]) runs its steps one job each: the same result. */
    @Test void tooFewSlotsFallBackToAJobPerStep() {
        ModelSpec m = BuiltinModels.get("digits-mlp");
        RunSpec three = new RunSpec(UUID.randomUUID().toString(), m.toJson(), m.input(), "digits", 0.1, 3, true, "strict", 0.1f, 5, "cross_entropy",
                "torch2pc", "sgd", "none", 66, 3, "cpu", 1, -1, 1f, 0f, "none");
        Map<String, float[]> a, b;
        try (Backend be = Backends.open("cpu"); Model model = Model.create(m, be, 3); Sgd sgd = new Sgd(model, 0.1f, 0.9f, 0f);
             SparkTraining t = new SparkTraining(sc, three, train.size(), model, sgd)) {
            long t0 = System.nanoTime();
            assertEquals(3, t.synchronous(0, 0, lrs(3, 0.1f)).size());
            assertNotNull(t.barrierFailure(), "3 barrier tasks on 2 slots cannot run");
            System.out.printf("3 partitions on local[2]: %s; the steps ran one job each (%.1f s)%n", t.barrierFailure(), (System.nanoTime() - t0) / 1e9);
            a = model.parameterValues();
        }
        try (Backend be = Backends.open("cpu"); Model model = Model.create(m, be, 3); Sgd sgd = new Sgd(model, 0.1f, 0.9f, 0f);
             SparkTraining t = new SparkTraining(sc, three, train.size(), model, sgd)) {
            for (int s = 0; s < 3; s++) t.step(0, s);
            b = model.parameterValues();
        }
        for (String k : a.keySet()) assertArrayEquals(a.get(k), b.get(k), k);
    }

    /**
     * Local steps with averaging: with one local step of plain SGD it is the synchronous step (the
     * average of the shards' steps is the step on the mean gradient); with more it is another run,
     * which still trains.
     */
    @Test void averagingEveryStepOfPlainSgdIsSynchronous() {
        List<Stepped> syncEnergies = new java.util.ArrayList<>(), averagedEnergies = new java.util.ArrayList<>();
        Map<String, float[]> a = plainSgd(spec("strict", -1), 0, syncEnergies), b = plainSgd(spec("strict", -1), 1, averagedEnergies),
                c = plainSgd(spec("strict", -1), 3, new java.util.ArrayList<>());
        double same = worst(a, b), apart = worst(a, c), energies = worstEnergy("strict", syncEnergies, averagedEnergies);
        System.out.printf("averaging: every step %.2e from synchronous (energies %.2e), every 3 steps %.2e%n", same, energies, apart);
        assertTrue(same <= 1e-6, "one local step of plain SGD, averaged, is the synchronous step: " + same);
        assertTrue(energies <= 1e-5, "and reports its energies: " + energies);
        assertTrue(apart > 1e-4, "three local steps are not: " + apart);
    }

    /** STEPS steps of plain SGD (lr 0.1): synchronous when every = 0, else local steps averaged every {@code every}; each step's energies added to {@code energies}. */
    static Map<String, float[]> plainSgd(RunSpec spec, int every, List<Stepped> energies) {
        try (Backend be = Backends.open("cpu"); Model model = Model.create(ModelSpec.parse(spec.specJson(), "spec"), spec.inputShape(), be, 3);
             Sgd sgd = new Sgd(model, 0.1f, 0f, 0f); SparkTraining t = new SparkTraining(sc, spec, train.size(), model, sgd)) {
            for (int s = 0; s < STEPS; ) {
                int k = every == 0 ? 1 : Math.min(every, STEPS - s);
                List<SparkTraining.StepResult> rs = every == 0 ? List.of(t.step(0, s)) : t.averaged(0, s, k);
                assertEquals(k, rs.size());
                rs.forEach(r -> energies.add(new Stepped(r.energies(), r.eta())));
                s += k;
            }
            return model.parameterValues();
        }
    }

    /**
     * Spark does not keep a partition on the executor that ran it last: a shard new to an executor
     * starts the next barrier job from the state another shard left there, never fetching the broadcast.
     */
    @Test void aShardNewToAnExecutorStartsFromTheStateAnotherLeftThere() {
        RunSpec spec = spec("strict", -1);
        ShardWorker.Exchange alone = mine -> mine;
        try (Backend be = Backends.open("cpu"); Model model = Model.create(ModelSpec.parse(spec.specJson(), "spec"), spec.inputShape(), be, 3);
             Sgd sgd = new Sgd(model, 0.1f, 0.9f, 0f)) {
            SparkTraining.Start start = new SparkTraining.Start(ShardWorker.flatten(model.parameterValues()), sgd.settings(), sgd.state());
            ShardWorker.SyncResult first = ShardWorker.of(spec, 0).synchronousSteps(() -> start, null, "job 1", alone, 0, 0, lrs(2, 0.1f), spec.eta(), -1);
            assertFalse(first.held());
            ShardWorker other = ShardWorker.of(spec, 1);
            ShardWorker.SyncResult second = other.synchronousSteps(() -> { throw new AssertionError("fetched the broadcast"); }, "job 1", "job 2", alone, 0, 2, new float[0], spec.eta(), -1);
            assertTrue(second.held());
            assertArrayEquals(first.parameters(), other.parameters(), "partition 1 starts where partition 0 ended");
            AssertionError fetched = assertThrows(AssertionError.class, () -> ShardWorker.of(spec, 0).synchronousSteps(() -> { throw new AssertionError("fetched the broadcast"); },
                    "a job that ended elsewhere", "job 3", alone, 0, 2, new float[0], spec.eta(), -1));
            assertEquals("fetched the broadcast", fetched.getMessage(), "a state this executor does not hold comes from the broadcast");
        } finally {
            ShardWorker.release(spec.runId());
        }
    }

    /** A task that fails once is retried (in a barrier job: the job's steps run again, one job each), and the run ends exactly as the undisturbed one. */
    @Test void aFailedTaskIsRetriedWithoutChangingTheResult() {
        Map<String, float[]> clean = onSpark(spec("strict", -1)), disturbed = onSpark(spec("strict", 2)), inBarrierJob = onSpark(spec("strict", 2), 4);
        for (String k : clean.keySet()) {
            assertArrayEquals(clean.get(k), disturbed.get(k), k);
            assertArrayEquals(clean.get(k), inBarrierJob.get(k), "a barrier stage retried after its task failed: " + k);
        }
        assertTrue(predcodeBlocks().isEmpty(), "blocks left behind by the failed barrier job: " + predcodeBlocks());
    }

    /** Spark, embedded, listens on and talks to 127.0.0.1 only. */
    @Test void onlyLoopback() throws Exception {
        onSpark(spec("backprop", -1));
        List<String> bad = Sockets.notLoopback("self");
        assertTrue(bad.isEmpty(), "sockets off loopback: " + bad);
    }

    /** Executors that cannot read the data fail the step with their own error, not Spark's bookkeeping. */
    @Test void unreadableDataNamesThePath() {
        RunSpec bad = spec("mnist:/nonexistent/predcode-data", "backprop", 0.1f, "torch2pc");
        try (Backend be = Backends.open("cpu"); Model model = Model.create(BuiltinModels.get("digits-mlp"), be, 3); Sgd sgd = new Sgd(model, 0.1f, 0f, 0f);
             SparkTraining t = new SparkTraining(sc, bad, train.size(), model, sgd)) {
            Exception e = assertThrows(Exception.class, () -> t.step(0, 0));
            String line = DataParallelRun.rootMessage(e);
            assertTrue(line.contains("/nonexistent/predcode-data"), line);
            assertFalse(line.contains("\n"), line);
        }
    }

    /** An executor whose files hold another training set than the driver read (a stale copy on a Worker) refuses to train, saying so in one line. */
    @Test void anExecutorWithOtherDataRefusesToTrain() {
        RunSpec c = spec("backprop", -1), other = new RunSpec(c.runId(), c.specJson(), c.inputShape(), c.data(), c.validation(), c.seed(), c.shuffle(), c.algorithm(),
                c.eta(), c.n(), c.loss(), c.energy(), c.beliefOptimizer(), c.nudging(), c.globalBatch(), c.partitions(), c.backend(), c.threads(), c.failOnceAtStep(),
                c.inputScale(), c.inputShift(), c.augment(), c.stableRelaxation(), c.threadInvariant(), "crc32c:00000000");
        try (Backend be = Backends.open("cpu"); Model model = Model.create(BuiltinModels.get("digits-mlp"), be, 3); Sgd sgd = new Sgd(model, 0.1f, 0f, 0f);
             SparkTraining t = new SparkTraining(sc, other, train.size(), model, sgd)) {
            Exception e = assertThrows(Exception.class, () -> t.step(0, 0));
            String line = DataParallelRun.rootMessage(e);
            assertTrue(line.startsWith("--data digits on executor ") && line.contains(" at 127.0.0.1 holds") && line.contains(" holds another training set than the driver read (digest crc32c:10b923ad,"
                    + " the driver's crc32c:00000000): every executor must read the same files"), line);
            assertFalse(line.contains("\n"), line);
        }
        RunSpec same = new RunSpec(UUID.randomUUID().toString(), c.specJson(), c.inputShape(), c.data(), c.validation(), c.seed(), c.shuffle(), c.algorithm(),
                c.eta(), c.n(), c.loss(), c.energy(), c.beliefOptimizer(), c.nudging(), c.globalBatch(), c.partitions(), c.backend(), c.threads(), c.failOnceAtStep(),
                c.inputScale(), c.inputShift(), c.augment(), c.stableRelaxation(), c.threadInvariant(), "crc32c:10b923ad");
        Map<String, float[]> checked = onSpark(same), unchecked = onSpark(c); // the driver's own digest: it trains, as unchecked
        assertEquals(unchecked.keySet(), checked.keySet());
        unchecked.forEach((k, v) -> assertArrayEquals(v, checked.get(k), k));
    }

    /**
     * A relaxation that runs off on the executors (eta far too large: the loss finite, the updates not) is a divergence at
     * its step, in a job per step, a barrier job and averaged local steps alike: the driver's parameters and optimizer stay as before it.
     */
    @Test void aRelaxationThatRunsOffIsADivergenceAndChangesNothing() {
        RunSpec wild = spec("digits", "pc", 1e30f, "sample");
        try (Backend be = Backends.open("cpu"); Model model = Model.create(BuiltinModels.get("digits-mlp"), be, 3); Sgd sgd = new Sgd(model, 0.1f, 0.9f, 0f);
             SparkTraining t = new SparkTraining(sc, wild, train.size(), model, sgd)) {
            Map<String, float[]> before = model.parameterValues();
            io.predcode.core.pc.DivergenceException d = assertThrows(io.predcode.core.pc.DivergenceException.class, () -> t.step(0, 0));
            assertEquals(1, d.step());
            assertTrue(d.reason().contains("summed updates are not finite at a finite loss"), d.getMessage());
            List<SparkTraining.StepResult> rs = t.synchronous(0, 0, lrs(3, 0.1f));
            assertEquals(1, rs.size(), "the barrier job stops at the step that ran off");
            assertTrue(Float.isNaN(rs.getFirst().loss()));
            assertNull(t.barrierFailure(), "it ran as a barrier job");
            assertThrows(io.predcode.core.pc.DivergenceException.class, () -> t.averaged(0, 0, 2), "local steps averaged");
            assertEquals(0, t.steps());
            assertEquals(0, sgd.steps());
            Map<String, float[]> after = model.parameterValues();
            for (String k : before.keySet()) assertArrayEquals(before.get(k), after.get(k), k);
        }
        // Guarded, a shard's relaxation that raises its energy at every halving ends the local steps, and names why.
        RunSpec guarded = with(spec("digits", "strict", 1e30f, "torch2pc"), "cpu", true);
        try (Backend be = Backends.open("cpu"); Model model = Model.create(BuiltinModels.get("digits-mlp"), be, 3); Sgd sgd = new Sgd(model, 0.1f, 0.9f, 0f);
             SparkTraining t = new SparkTraining(sc, guarded, train.size(), model, sgd)) {
            Map<String, float[]> before = model.parameterValues();
            io.predcode.core.pc.DivergenceException d = assertThrows(io.predcode.core.pc.DivergenceException.class, () -> t.averaged(0, 0, 2));
            assertEquals(1, d.step());
            assertTrue(d.reason().contains("STRICT's relaxation of a shard's batch diverges even at eta 9.5367"), d.getMessage());
            assertEquals(0, t.steps());
            assertEquals(0, sgd.steps());
            Map<String, float[]> after = model.parameterValues();
            for (String k : before.keySet()) assertArrayEquals(before.get(k), after.get(k), k);
        }
    }

    @Test void iPcIsRefused() {
        try (Backend be = Backends.open("cpu"); Model model = Model.create(BuiltinModels.get("digits-mlp"), be, 3); Sgd sgd = new Sgd(model, 0.1f, 0f, 0f)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new SparkTraining(sc, spec("ipc", -1), train.size(), model, sgd));
            assertTrue(e.getMessage().contains("ipc"), e.getMessage());
        }
    }
}
