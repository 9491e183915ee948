package io.predcode.core;

import io.predcode.core.nn.BuiltinModels;
import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.optim.Adam;
import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.PcEngine;
import io.predcode.core.pc.Trainer;
import io.predcode.core.serve.Predictor;
import io.predcode.spi.Backend;
import io.predcode.spi.Backends;

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A soak of online learning under load: {@code threads} threads predict on digits-mlp with their own
 * inputs (batch sizes 1..8) while one thread trains and publishes a version after every step, until
 * both {@code predictions} and {@code publishes} are reached. Every answer is checked bit for bit
 * against the answer the trainer's engine gave for that thread's input at that version's parameters,
 * computed before the version was published. Off-heap memory is read from Native Memory Tracking
 * (run with {@code -XX:NativeMemoryTracking=summary}) after warm-up and at the end.
 *
 * <p>Then {@code closes} times it opens a model, an engine and a predictor, lets two threads call
 * them, and closes all three while the calls run; NMT is read after the first 100 and at the end.
 *
 * <p>Usage: {@code ServingSoak [predictions=1000000] [publishes=10000] [threads=8] [closes=10000]}; see bench/serving-soak.sh.
 * {@code -Dpredcode.soak.backend=cuda} soaks the CUDA backend (on the simulator, with its driver given, smaller counts).
 */
public final class ServingSoak {
    public static void main(String[] args) throws Exception {
        long wantPredictions = args.length > 0 ? Long.parseLong(args[0]) : 1_000_000;
        long wantPublishes = args.length > 1 ? Long.parseLong(args[1]) : 10_000;
        int threads = args.length > 2 ? Integer.parseInt(args[2]) : 8;
        int closes = args.length > 3 ? Integer.parseInt(args[3]) : 10_000;
        SplittableRandom r = new SplittableRandom(1);
        try (Backend be = Backends.open(System.getProperty("predcode.soak.backend", "cpu")); Model m = Model.create(BuiltinModels.get("digits-mlp"), be, 1);
             PcEngine engine = new PcEngine(m, Loss.CROSS_ENTROPY); Adam adam = new Adam(m, 0.01f); Predictor p = Predictor.of(m)) {
            Trainer trainer = new Trainer(engine, adam, Algorithm.STRICT, 0.1f, 5);
            float[] tx = new float[32 * 64], ty = new float[32];
            for (int i = 0; i < tx.length; i++) tx[i] = (float) r.nextDouble();
            for (int i = 0; i < ty.length; i++) ty[i] = r.nextInt(10);
            int[] batch = new int[threads];
            float[][] xs = new float[threads][];
            for (int t = 0; t < threads; t++) {
                batch[t] = 1 + t % 8;
                xs[t] = new float[batch[t] * 64];
                for (int i = 0; i < xs[t].length; i++) xs[t][i] = (float) r.nextDouble();
            }
            // expected.get(version)[thread]: the engine's answer at that version, computed before it is published.
            ConcurrentHashMap<Long, float[][]> expected = new ConcurrentHashMap<>();
            expected.put(p.version(), answers(engine, xs, batch));
            AtomicBoolean done = new AtomicBoolean();
            AtomicLong predictions = new AtomicLong(), mismatches = new AtomicLong(), publishes = new AtomicLong();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            long nmtWarm = -1;
            List<Thread> workers = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int id = t;
                workers.add(Thread.ofPlatform().name("predict-" + t).start(() -> {
                    float[] out = new float[batch[id] * 10];
                    try {
                        while (!done.get()) {
                            long v = p.logits(xs[id], batch[id], out);
                            float[][] e = expected.get(v);
                            if (e == null || !Arrays.equals(e[id], out)) mismatches.incrementAndGet();
                            predictions.incrementAndGet();
                        }
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                    }
                }));
            }
            long start = System.nanoTime();
            while (failure.get() == null && (predictions.get() < wantPredictions || publishes.get() < wantPublishes)) {
                trainer.step(tx, ty, 32);
                expected.put(p.version() + 1, answers(engine, xs, batch)); // the next version's number: one publisher
                p.publish(m);
                expected.remove(p.version() - 1000); // answers older than 1000 versions are not kept (a prediction takes microseconds)
                if (publishes.incrementAndGet() == 200) nmtWarm = nmtCommittedKb();
            }
            done.set(true);
            for (Thread w : workers) w.join();
            double seconds = (System.nanoTime() - start) / 1e9;
            long nmtEnd = nmtCommittedKb();
            if (failure.get() != null) throw new AssertionError("a predicting thread failed", failure.get());
            System.out.printf("{\"backend\": \"%s\", \"threads\": %d, \"predictions\": %d, \"publishes\": %d, \"seconds\": %.1f, \"mismatches\": %d, "
                            + "\"offheap_committed_kb_after_200_publishes\": %d, \"offheap_committed_kb_at_end\": %d}%n",
                    be.description().replace("\"", "'"), threads, predictions.get(), publishes.get(), seconds, mismatches.get(), nmtWarm, nmtEnd);
            if (mismatches.get() != 0) System.exit(1);
            racedCloses(be, closes);
        }
    }

    /** Closes racing with running calls, {@code trials} times: every call ends with an answer or "closed", and memory stays flat. */
    static void racedCloses(Backend be, int trials) throws Exception {
        long warm = -1, failures = 0, start = System.nanoTime();
        for (int trial = 0; trial < trials; trial++) {
            Model m = Model.create(BuiltinModels.get("digits-mlp"), be, trial);
            PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY);
            Predictor p = Predictor.of(m);
            float[] x = new float[4 * 64];
            AtomicLong other = new AtomicLong();
            Runnable calls = () -> {
                for (int i = 0; i < 200; i++) {
                    try {
                        if (Thread.currentThread().getName().endsWith("0")) e.predict(x, 4);
                        p.logits(x, 4);
                    } catch (IllegalStateException ex) {
                        if (!ex.getMessage().contains("closed")) other.incrementAndGet();
                        return;
                    } catch (Throwable t) {
                        other.incrementAndGet();
                        return;
                    }
                }
            };
            Thread a = Thread.ofPlatform().name("caller-0").start(calls), b = Thread.ofPlatform().name("caller-1").start(calls);
            Thread.sleep(0, 20_000 * (trial % 5));
            p.close();
            e.close();
            m.close();
            a.join();
            b.join();
            failures += other.get();
            if (trial == 100) warm = nmtCommittedKb();
        }
        System.out.printf("{\"raced_closes\": %d, \"seconds\": %.1f, \"calls_failing_otherwise_than_closed\": %d, \"offheap_committed_kb_after_100\": %d, \"offheap_committed_kb_at_end\": %d}%n",
                trials, (System.nanoTime() - start) / 1e9, failures, warm, nmtCommittedKb());
        if (failures != 0) System.exit(1);
    }

    private static float[][] answers(PcEngine engine, float[][] xs, int[] batch) {
        float[][] out = new float[xs.length][];
        for (int t = 0; t < xs.length; t++) out[t] = engine.predict(xs[t], batch[t]);
        return out;
    }

    /**
     * Committed memory outside the Java heap, in KB, from NMT's summary (its total less the Java Heap
     * line: G1 grows the heap under this allocation rate, which says nothing about off-heap leaks);
     * -1 without -XX:NativeMemoryTracking.
     */
    static long nmtCommittedKb() throws Exception {
        String s = (String) ManagementFactory.getPlatformMBeanServer().invoke(new javax.management.ObjectName("com.sun.management:type=DiagnosticCommand"),
                "vmNativeMemory", new Object[]{new String[]{"summary"}}, new String[]{String[].class.getName()});
        Matcher total = Pattern.compile("Total: reserved=\\d+KB, committed=(\\d+)KB").matcher(s);
        Matcher heap = Pattern.compile("Java Heap \\(reserved=\\d+KB, committed=(\\d+)KB").matcher(s);
        return total.find() && heap.find() ? Long.parseLong(total.group(1)) - Long.parseLong(heap.group(1)) : -1;
    }
}
