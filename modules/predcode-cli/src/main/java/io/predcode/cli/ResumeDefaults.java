package io.predcode.cli;

import io.predcode.core.io.Checkpoint;
import io.predcode.core.json.JsonFields;
import picocli.CommandLine;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code train --resume} with options left out takes the run's own settings for them, as its checkpoint records them:
 * {@code predcode train --resume --out DIR} goes on with the run as it was started, where it had to be given every
 * option again (and was refused, naming the first that differed). An option given is checked against the run as before.
 * A sweep's runs (--seeds, --grid) resume with the sweep's options, as before.
 */
final class ResumeDefaults {
    private ResumeDefaults() {}

    /** A setting the checkpoint records under {@code key}, set by {@code option} (or, for a flag, present where "on"), and by the other names too. */
    private record Setting(String key, String option, boolean flag, String... alsoSetBy) {}

    private static final List<Setting> SETTINGS = List.of(
            new Setting("algorithm", "--algorithm", false), new Setting("model", "--model", false), new Setting("data", "--data", false),
            new Setting("epochs", "--epochs", false), new Setting("batch_size", "--batch-size", false), new Setting("optimizer", "--optimizer", false),
            new Setting("belief_optimizer", "--belief-optimizer", false, "--inference-optimizer", "--inference-momentum"),
            new Setting("condense", "--condense", false), new Setting("energy", "--energy", false), new Setting("nudging", "--nudging", false),
            new Setting("lr_schedule", "--lr-schedule", false), new Setting("lr", "--lr", false), new Setting("momentum", "--momentum", false),
            new Setting("weight_decay", "--weight-decay", false), new Setting("eta", "--eta", false, "--inference-lr"), new Setting("n", "--n", false, "--T"),
            new Setting("loss", "--loss", false), new Setting("seed", "--seed", false), new Setting("validation", "--validation", false),
            new Setting("collapse_margin", "--collapse-margin", false), new Setting("patience", "--patience", false),
            new Setting("on_collapse", "--on-collapse", false), new Setting("monitor_every", "--monitor-every", false),
            new Setting("stable_relaxation", "--stable-relaxation", false), new Setting("input_range", "--input-range", false),
            new Setting("augment", "--augment", false), new Setting("shuffle", "--shuffle", false), new Setting("drop_last", "--drop-last", true),
            new Setting("score_whole_batches", "--score-whole-batches", true), new Setting("thread_invariant", "--thread-invariant", true));

    /** The checkpoint a resumed train reads: the one in its --out. */
    static Path file(CommandLine.ParseResult train) { return train.matchedOptionValue("--out", Path.of("runs/latest")).resolve(Checkpoint.RESUME_FILE); }

    /**
     * The arguments to add to {@code train} for the options it was not given, from the checkpoint in its --out, each
     * "--option=value" or a flag; none where it does not resume one run, or there is no checkpoint to read (the run
     * then says what is wrong).
     */
    static List<String> missing(CommandLine.ParseResult train) {
        List<String> added = new ArrayList<>();
        if (!train.hasMatchedOption("--resume") || train.hasMatchedOption("--seeds") || train.hasMatchedOption("--grid")) return added;
        Path file = file(train);
        JsonFields settings;
        try {
            if (!Files.isRegularFile(file)) return added;
            JsonFields t = Checkpoint.load(file).training();
            if (t == null || !t.has("settings")) return added;
            settings = t.object("settings");
        } catch (Exception e) { // a damaged checkpoint: the run's own reading of it says so, in one line
            return added;
        }
        for (Setting s : SETTINGS) {
            if (!settings.has(s.key()) || train.hasMatchedOption(s.option()) || List.of(s.alsoSetBy()).stream().anyMatch(train::hasMatchedOption)) continue;
            Object v = settings.get(s.key());
            String value = v instanceof Double d ? (d == Math.rint(d) && Math.abs(d) < 1e15 ? Long.toString(d.longValue()) : d.toString()) : String.valueOf(v);
            if (s.flag()) {
                if (value.equals("on")) added.add(s.option());
            } else {
                added.add(s.option() + "=" + value); // one argument: a value, whatever it holds, cannot be read as another option
            }
        }
        return added;
    }
}
