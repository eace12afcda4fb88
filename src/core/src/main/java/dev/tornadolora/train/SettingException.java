package dev.tornadolora.train;

import java.util.function.UnaryOperator;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A training job's setting ({@code finetune.FinetuneJob}, the {@code train} command's options) that cannot work, said in a message that names the setting by its field
 * ({@code batch}, {@code grad_accum}, {@code output}, as {@code log.json} records them). The message is kept as a
 * template with each field in braces ({@code "{batch} must be positive, got 0"}): {@link #getMessage()} gives the
 * field names, and a front end that spells the settings otherwise (the CLI's {@code --batch}) renders it with
 * {@link #render}.
 */
public final class SettingException extends IllegalArgumentException {
    private static final Pattern FIELD = Pattern.compile("\\{([a-z][a-z0-9_]*)}");
    private final String template;

    /** @param template the message, each field named as {@code {field}} */
    public SettingException(String template) {
        super(render(template == null ? "" : template, UnaryOperator.identity()));
        this.template = template == null ? "" : template;
    }

    /** The message with every {@code {field}} replaced by {@code spelling.apply(field)}. */
    public String render(UnaryOperator<String> spelling) {
        return render(template, spelling);
    }

    /** The message template, fields in braces. */
    public String template() {
        return template;
    }

    private static String render(String template, UnaryOperator<String> spelling) {
        Matcher m = FIELD.matcher(template);
        StringBuilder b = new StringBuilder();
        while (m.find()) m.appendReplacement(b, Matcher.quoteReplacement(spelling.apply(m.group(1))));
        return m.appendTail(b).toString();
    }
}
