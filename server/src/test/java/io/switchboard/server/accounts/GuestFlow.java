package io.switchboard.server.accounts;

import static io.switchboard.server.accounts.AccountsHub.chat;
import static io.switchboard.server.accounts.AccountsHub.json;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import java.net.http.HttpResponse;

/** A guest's first minutes, the same on SQLite and PostgreSQL. */
final class GuestFlow {

  private GuestFlow() {}

  static void run(AccountsHub hub) {
    JsonNode guest = hub.guest();
    assertEquals("Bearer", guest.path("token_type").asText());
    assertEquals(900, guest.path("expires_in").asInt(), "15 minutes by default");
    assertTrue(guest.path("username").asText().startsWith("guest-"));
    String access = guest.path("access_token").asText();
    assertEquals(3, access.split("\\.").length, "a JWT");
    assertTrue(guest.path("refresh_token").asText().startsWith("rt_"));

    HttpResponse<String> me = hub.call("GET", "/auth/me", access, null);
    assertEquals(200, me.statusCode(), me.body());
    assertEquals("jwt", me.headers().firstValue("X-Auth-Method").orElse(""));
    JsonNode profile = json(me);
    assertEquals(guest.path("user_id").asText(), profile.path("id").asText());
    assertTrue(profile.path("is_guest").asBoolean());
    assertTrue(profile.has("email") && profile.path("email").isNull());
    assertEquals(profile, json(hub.call("GET", "/v1/users/me", access, null)));

    assertEquals(1, hub.openai(access).chat().completions().create(ChatCompletionCreateParams.builder().model("chat")
        .addUserMessage("hi").maxCompletionTokens(2).build()).choices().size(), "the OpenAI SDK with a guest's token");
    HttpResponse<String> fastPath = hub.call("POST", "/v1/chat/completions", access, chat());
    assertEquals("jwt", fastPath.headers().firstValue("X-Auth-Method").orElse(""));
    assertEquals(401, hub.call("POST", "/v1/chat/completions", "sk_live_made_up", chat()).statusCode());

    JsonNode settings = json(hub.call("GET", "/v1/users/me/settings", access, null));
    assertEquals("Friendly", settings.at("/profile_settings/base_style").asText(), "defaults on first read");
    assertEquals(200, hub.call("PATCH", "/v1/users/me/settings", access, "{\"preferences\":{\"selected_model\":\"chat\"}}").statusCode());
    HttpResponse<String> patched = hub.call("PATCH", "/v1/users/me/settings", access,
        "{\"preferences\":{\"enable_search\":true},\"profile_settings\":{\"base_style\":\"Concise\"}}");
    assertEquals(200, patched.statusCode(), patched.body());
    JsonNode after = json(patched);
    assertEquals("chat", after.at("/preferences/selected_model").asText(), "preferences merged");
    assertTrue(after.at("/preferences/enable_search").asBoolean());
    assertEquals("Concise", after.at("/profile_settings/base_style").asText());
    assertTrue(after.at("/profile_settings/nick_name").isMissingNode(), "a section named is replaced whole");
    assertEquals(400, hub.call("PATCH", "/v1/users/me/settings", access, "{\"theme\":\"dark\"}").statusCode());

    String other = hub.guest().path("access_token").asText();
    assertEquals("Friendly", json(hub.call("GET", "/v1/users/me/settings", other, null)).at("/profile_settings/base_style").asText(),
        "another user's settings are their own");
  }
}
