package io.moecluster.router.openai;

/**
 * An error answered in OpenAI's error object: {@code {"error": {"message", "type", "param",
 * "code"}}} with an HTTP status.
 */
final class ApiException extends Exception {
    final int status;
    final String type;
    final String param;
    final String code;

    ApiException(int status, String type, String param, String code, String message) {
        super(message, null, false, false);
        this.status = status;
        this.type = type;
        this.param = param;
        this.code = code;
    }

    /** 400, naming the parameter. */
    static ApiException invalid(String param, String message) {
        return new ApiException(400, "invalid_request_error", param, null, message);
    }

    static ApiException unsupported(String param, String what) {
        return invalid(param, what + " is not supported by this server");
    }
}
