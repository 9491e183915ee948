package io.predcode.cli;

import picocli.CommandLine;
import picocli.CommandLine.Model.OptionSpec;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A command's options in --help under headings, in the order given: train has some sixty and bench thirty, and one flat
 * list of them is hard to find a thing in. An option no heading names is listed last, under "Other" (a test holds
 * train, bench and compare to none there, so that a new option is placed).
 */
final class HelpSections {
    private HelpSections() {}

    /** Lists {@code cmd}'s options under these headings, each with its options' names (any one of each option's). */
    static void install(CommandLine cmd, Map<String, List<String>> sections) {
        cmd.getCommandSpec().usageMessage().abbreviateSynopsis(true); // "predcode train [OPTIONS]": the sections list them
        cmd.getHelpSectionMap().put(CommandLine.Model.UsageMessageSpec.SECTION_KEY_OPTION_LIST, help -> render(help, sections));
    }

    /** The options of {@code spec} that no heading of {@code sections} names, help and version included; hidden ones left out. */
    static List<OptionSpec> unplaced(CommandLine.Model.CommandSpec spec, Map<String, List<String>> sections) {
        List<OptionSpec> rest = new ArrayList<>(spec.options().stream().filter(o -> !o.hidden()).toList());
        sections.values().forEach(names -> names.forEach(n -> rest.remove(option(spec, n))));
        return rest;
    }

    private static String render(CommandLine.Help help, Map<String, List<String>> sections) {
        Map<String, List<OptionSpec>> listed = new LinkedHashMap<>();
        sections.forEach((heading, names) -> listed.put(heading, names.stream().map(n -> option(help.commandSpec(), n)).toList()));
        List<OptionSpec> rest = unplaced(help.commandSpec(), sections);
        if (!rest.isEmpty()) listed.put("Other", rest);
        StringBuilder text = new StringBuilder();
        listed.forEach((heading, options) -> {
            CommandLine.Help.Layout layout = help.createDefaultLayout();
            for (OptionSpec o : options) layout.addOption(o, help.createDefaultParamLabelRenderer());
            text.append(String.format("%n%s:%n", heading)).append(layout);
        });
        return text.toString();
    }

    private static OptionSpec option(CommandLine.Model.CommandSpec spec, String name) {
        OptionSpec o = spec.findOption(name);
        if (o == null) throw new IllegalStateException("help section names " + name + ", which " + spec.qualifiedName() + " does not have");
        return o;
    }
}
