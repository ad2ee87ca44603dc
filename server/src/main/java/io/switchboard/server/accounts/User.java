package io.switchboard.server.accounts;

import com.fasterxml.jackson.annotation.JsonInclude;
import java.util.List;

/**
 * A person who uses the server, a guest until upgraded; as {@code /auth/me} shows them.
 *
 * @param roles {@code user}, and {@code admin} for those who administer the server
 * @param createdAt Unix seconds
 */
@JsonInclude(JsonInclude.Include.ALWAYS)
public record User(String id, String username, String email, String fullName, List<String> roles, boolean isGuest,
    long createdAt) {

  static final String ROLE_USER = "user";
  static final String ROLE_ADMIN = "admin";
  /** Not a role a user holds: what a guest's limits are looked up as. */
  static final String ROLE_GUEST = "guest";
}
