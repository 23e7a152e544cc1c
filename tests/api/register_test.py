"""POST/PUT/DELETE /v1/services: JSON and TOML bodies, every error status with its
detail, and registrations surviving a daemon restart."""
import os

from api_harness import TestCase, main, service


class Register(TestCase):
    CONFIG = service("cfg", ["sleep", "1000"], autostart=False, ports=[18999])

    def test_register_json_and_toml_survive_restart(self):
        d = self.daemon(self.CONFIG)
        out = self.assertStatus(d.json("POST", "/v1/services", {
            "name": "web", "command": ["sleep", "999"], "restart": "always",
            "health": {"exec": ["true"], "interval": "1s"}, "env": {"A": "1"}}), 201)
        self.assertEqual(out["name"], "web")
        self.assertEqual(out["source"], "api")
        self.assertEqual(out["command"], ["sleep", "999"])
        toml = '[services.job]\ncommand = ["sleep", "998"]\nautostart = false\n'
        self.assertStatus(d.json("POST", "/v1/services", toml, ctype="application/toml"), 201)
        d.wait_running("web")
        spec = self.assertStatus(d.json("GET", "/v1/services/web"), 200)["spec"]
        self.assertEqual(spec["restart"], "always")
        self.assertEqual(spec["health"]["interval"], "1s")
        self.assertEqual(spec["env"], {"A": None})  # values only with ?secrets=1 (#15)
        spec = self.assertStatus(d.json("GET", "/v1/services/web?secrets=1"), 200)["spec"]
        self.assertEqual(spec["env"], {"A": "1"})
        self.assertTrue(os.path.exists(d.path("services", "web.toml")))
        d.stop()
        d.start()
        names = {s["name"]: s for s in self.assertStatus(d.json("GET", "/v1/services"), 200)}
        self.assertEqual(set(names), {"cfg", "web", "job"})
        self.assertEqual(names["web"]["source"], "api")
        self.assertEqual(names["job"]["state"], "stopped")
        d.wait_running("web")

    def test_errors(self):
        d = self.daemon(self.CONFIG, env={})
        # 400 bad JSON, with the position.
        err = self.assertStatus(d.json("POST", "/v1/services", '{"name": "x", "command": [', ), 400)
        self.assertEqual(err["error"], "bad JSON")
        self.assertEqual(err["detail"]["position"], 27)
        # Well-formed JSON whose number no double holds (found by fuzzing; it was a 500).
        err = self.assertStatus(d.json("POST", "/v1/services", '{"name": "x", "restart_limit": 1e999}'), 400)
        self.assertEqual(err["error"], "bad JSON")
        self.assertIn("overflow", err["detail"]["message"])
        err = self.assertStatus(d.json("POST", "/v1/services/cfg/signal", '{"signal": 1e999}'), 400)
        self.assertEqual(err["error"], "bad JSON")
        err = self.assertStatus(d.json("POST", "/v1/services", '[services.x\n', ctype="application/toml"), 400)
        self.assertEqual(err["detail"]["line"], 1)
        # 415 other content types.
        err = self.assertStatus(d.json("POST", "/v1/services", "name=x", ctype="application/x-www-form-urlencoded"), 415)
        self.assertEqual(err["detail"]["content_type"], "application/x-www-form-urlencoded")
        # 422 with field-level detail.
        err = self.assertStatus(d.json("POST", "/v1/services", {
            "name": "bad", "command": [], "restart": "sometimes", "health": {"exec": ["true"], "interval": "soon"},
            "colour": "red"}), 422)
        self.assertEqual(err["error"], "invalid service spec")
        fields = {e["field"]: e for e in err["detail"]}
        self.assertEqual(set(fields), {"command", "restart", "health.interval", "colour"}, err)
        self.assertIn("must not be empty", fields["command"]["message"])
        self.assertRegex(fields["restart"]["text"], r"^request:\d+:\d+: ")
        err = self.assertStatus(d.json("POST", "/v1/services", {"command": ["true"]}), 422)
        self.assertEqual(err["detail"][0]["field"], "name")
        err = self.assertStatus(d.json("POST", "/v1/services", {"name": "Bad Name", "command": ["true"]}), 422)
        self.assertIn("invalid service name", err["detail"][0]["message"])
        # 422 from the cross-service checks: a port another service claims, an unknown dependency.
        err = self.assertStatus(d.json("POST", "/v1/services", {"name": "p", "command": ["true"], "ports": [18999]}), 422)
        self.assertTrue(any("18999" in e["message"] for e in err["detail"]), err)
        err = self.assertStatus(d.json("POST", "/v1/services", {"name": "q", "command": ["true"], "depends_on": ["ghost"]}), 422)
        self.assertTrue(any("ghost" in e["message"] for e in err["detail"]), err)
        # 409: a taken name (config or API).
        err = self.assertStatus(d.json("POST", "/v1/services", {"name": "cfg", "command": ["true"]}), 409)
        self.assertEqual(err["detail"], {"name": "cfg"})
        self.assertStatus(d.json("POST", "/v1/services", {"name": "mine", "command": ["sleep", "5"], "autostart": False}), 201)
        self.assertStatus(d.json("POST", "/v1/services", {"name": "mine", "command": ["true"]}), 409)
        # 413: over http.max_body_bytes (default 10 MiB).
        big = '{"name": "big", "command": ["true"], "x": "' + "a" * (11 << 20) + '"}'
        self.assertStatus(d.json("POST", "/v1/services", big), 413)
        # PUT: 404 unknown, 409 config service, 422 name mismatch, 200 replace.
        self.assertStatus(d.json("PUT", "/v1/services/ghost", {"command": ["true"]}), 404)
        err = self.assertStatus(d.json("PUT", "/v1/services/cfg", {"command": ["true"]}), 409)
        self.assertIn("config.toml", err["error"])
        err = self.assertStatus(d.json("PUT", "/v1/services/mine", {"name": "other", "command": ["true"]}), 422)
        self.assertEqual(err["detail"][0]["field"], "name")
        out = self.assertStatus(d.json("PUT", "/v1/services/mine", {"command": ["sleep", "7"], "autostart": False}), 200)
        self.assertEqual(out["command"], ["sleep", "7"])
        with open(d.path("services", "mine.toml")) as f:
            self.assertRegex(f.read(), r"[\x27\x22]7[\x27\x22]")
        # DELETE: 404, 409 config, 200.
        self.assertStatus(d.json("DELETE", "/v1/services/ghost"), 404)
        self.assertStatus(d.json("DELETE", "/v1/services/cfg"), 409)
        self.assertEqual(self.assertStatus(d.json("DELETE", "/v1/services/mine"), 200), {"removed": "mine"})
        self.assertStatus(d.json("GET", "/v1/services/mine"), 404)
        self.assertFalse(os.path.exists(d.path("services", "mine.toml")))


if __name__ == "__main__":
    main()
