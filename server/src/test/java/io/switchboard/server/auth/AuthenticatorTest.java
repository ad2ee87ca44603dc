package io.switchboard.server.auth;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.switchboard.protocol.CloseCodes;
import io.switchboard.server.ServerConfig;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Who a credential is, what it may do, and what a refused client is told. */
class AuthenticatorTest {

  private static Authenticator with(String apiKey, List<String> managementKeys, List<String> inferenceKeys, String clientKey) {
    return new Authenticator(new ServerConfig(null, null, null, apiKey, clientKey, null, null, null, null, null, null, null, null,
        null, null, managementKeys, inferenceKeys, null, null, null, null, null, null, null, null));
  }

  private static Principal admitted(Authenticator.Outcome outcome) {
    assertTrue(outcome instanceof Authenticator.Admitted, "admitted: " + outcome);
    return ((Authenticator.Admitted) outcome).principal();
  }

  private static String refused(Authenticator.Outcome outcome) {
    assertTrue(outcome instanceof Authenticator.Refused, "refused: " + outcome);
    Authenticator.Refused refused = (Authenticator.Refused) outcome;
    assertEquals(401, refused.error().status());
    return refused.error().message();
  }

  @Test
  void withoutKeysOnlyClientsOnThisMachineAreServed() {
    Authenticator auth = with(null, List.of(), List.of(), null);
    Principal local = admitted(auth.authenticate(null, null, true, Scope.MANAGEMENT));
    assertEquals(Principal.Via.LOOPBACK, local.via());
    assertTrue(refused(auth.authenticate(null, null, false, Scope.INFERENCE)).contains("only serves clients on its own machine"));
    assertTrue(refused(auth.authenticate("Bearer anything", null, false, Scope.INFERENCE)).contains("only serves"));
  }

  @Test
  void theApiKeyManagesUntilManagementKeysAreConfigured() {
    Authenticator alone = with("api", List.of(), List.of(), null);
    assertEquals(Set.of(Scope.INFERENCE, Scope.OPERATIONS, Scope.MANAGEMENT),
        admitted(alone.authenticate("Bearer api", null, false, Scope.MANAGEMENT)).scopes());

    Authenticator split = with("api", List.of("mk"), List.of("ik"), null);
    assertEquals("api_key", admitted(split.authenticate("Bearer api", null, false, Scope.INFERENCE)).id());
    assertEquals("invalid API key", refused(split.authenticate("Bearer api", null, false, Scope.MANAGEMENT)));
    assertEquals("inference_key:1", admitted(split.authenticate(null, "ik", false, Scope.INFERENCE)).id(), "X-API-Key works too");
    assertTrue(admitted(split.authenticate("Bearer ik", null, false, Scope.OPERATIONS)).may(Scope.OPERATIONS),
        "every key of the server's own reads its state and drains workers, as before people had accounts");
    assertEquals("invalid API key", refused(split.authenticate("Bearer ik", null, true, Scope.MANAGEMENT)),
        "a guarded scope asks for its key even on this machine");
    assertEquals("management_key:1", admitted(split.authenticate("bearer mk", null, false, Scope.INFERENCE)).id(),
        "a management key reaches the OpenAI API; the scheme's case does not matter");
    assertTrue(refused(split.authenticate(null, null, false, Scope.INFERENCE)).startsWith("missing API key"));
    assertEquals("invalid API key", refused(split.authenticate("Bearer nope", null, false, Scope.INFERENCE)));
  }

  @Test
  void aScopeNoKeyGuardsIsOpenToThisMachineWhateverKeyItSends() {
    Authenticator auth = with(null, List.of(), List.of("ik"), null);
    assertTrue(admitted(auth.authenticate("Bearer ik", null, true, Scope.MANAGEMENT)).may(Scope.MANAGEMENT));
    assertTrue(admitted(auth.authenticate("Bearer wrong", null, true, Scope.MANAGEMENT)).may(Scope.MANAGEMENT));
    assertTrue(refused(auth.authenticate("Bearer ik", null, false, Scope.MANAGEMENT)).contains("only serves"));
  }

  @Test
  void agentsSendTheClientKeyWhenThereIsOneAndNoneWhenThereIsNot() {
    Authenticator open = with(null, List.of(), List.of(), null);
    assertNull(open.admitAgent(null, null));
    assertEquals(CloseCodes.UNEXPECTED_CLIENT_KEY, open.admitAgent("ck", null).code());

    Authenticator keyed = with(null, List.of(), List.of(), "ck");
    assertNull(keyed.admitAgent("ck", null));
    assertNull(keyed.admitAgent(null, "Bearer ck"), "as the upgrade's bearer token");
    assertEquals("client key required", keyed.admitAgent(null, null).reason());
    assertEquals(CloseCodes.UNAUTHORIZED, keyed.admitAgent("other", "Bearer ck").code(), "the register message's key counts first");
  }
}
