package io.moecluster.router.chat;

/**
 * A chat template could not be rendered: the model has none, the template called
 * {@code raise_exception} (the conversation breaks its rules, e.g. roles that do not alternate),
 * or it is not valid Jinja. The message says which; a request's error is the client's (400) unless
 * {@link #templateBroken()}.
 */
public final class ChatTemplateException extends Exception {
    private final boolean templateBroken;

    public ChatTemplateException(String message, boolean templateBroken) {
        super(message);
        this.templateBroken = templateBroken;
    }

    /** Whether the template itself is at fault (a syntax error), not the messages it was given. */
    public boolean templateBroken() {
        return templateBroken;
    }
}
