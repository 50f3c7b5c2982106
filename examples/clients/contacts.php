<?php
// The developer docs' PHP snippet (creates a contact), run with php-cli and php-curl:
//   OPSIQ_URL=http://127.0.0.1:8080 OPSIQ_KEY=opq_... php examples/clients/contacts.php
// Prints the response as JSON; exits 1 unless the status is 2xx and `success` is true.
// (`json_decode(..., true)` makes arrays, so an empty object such as `attributes` prints as [].)

$base = rtrim((string) getenv('OPSIQ_URL'), '/');
$key = (string) getenv('OPSIQ_KEY');
if ($base === '' || $key === '') {
    fwrite(STDERR, "contacts.php: set OPSIQ_URL (e.g. http://127.0.0.1:8080) and OPSIQ_KEY (opq_...)\n");
    exit(2);
}

$ch = curl_init($base . '/api/v1/contacts');
curl_setopt_array($ch, [
    CURLOPT_RETURNTRANSFER => true,
    CURLOPT_POST => true,
    CURLOPT_HTTPHEADER => [
        'Authorization: Bearer ' . $key,
        'Content-Type: application/json',
    ],
    CURLOPT_POSTFIELDS => json_encode(['email' => 'ada@example.com', 'name' => 'Ada Lovelace']),
]);
$response = json_decode(curl_exec($ch), true);

$status = curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
if ($status < 200 || $status > 299 || ($response['success'] ?? false) !== true) {
    $why = $status === 0 ? curl_error($ch) : json_encode($response);
    fwrite(STDERR, "contacts.php: HTTP $status: $why\n");
    exit(1);
}
echo json_encode($response, JSON_UNESCAPED_SLASHES), PHP_EOL;
