"""The GET/DELETE/POST shorthands shared by a single test server and a pair of them:
both only implement request(method, path, key=None, headers=None, **kw)."""


class HttpVerbs:
    def get(self, path, key=None, **kw):
        return self.request("GET", path, key, **kw)

    def delete(self, path, key=None, **kw):
        return self.request("DELETE", path, key, **kw)

    def post(self, path, key=None, **kw):
        return self.request("POST", path, key, **kw)
